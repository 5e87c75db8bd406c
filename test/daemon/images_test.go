package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/test/registry"
)

type imageJSON struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
	Size   int64  `json:"size"`
}

type diskUsageJSON struct {
	ContentBytes     int64 `json:"contentBytes"`
	SnapshotBytes    int64 `json:"snapshotBytes"`
	ReclaimableBytes int64 `json:"reclaimableBytes"`
	Images           []struct {
		Name string `json:"name"`
		Size int64  `json:"size"`
	} `json:"images"`
	Blobs     []json.RawMessage `json:"blobs"`
	Snapshots []json.RawMessage `json:"snapshots"`
}

func decode[T any](t *testing.T, what, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("%s: not JSON: %v\n%s", what, err, s)
	}
	return v
}

func TestImageLifecycle(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	registry.PushBusybox(t, reg, "busybox:1")
	ref := reg.Ref("busybox:1")

	e := newEnv(t)
	e.start()

	// pull: stdout is a pipe, so plain lines, one per state change.
	out := e.mustGantry("pull", ref)
	if strings.Contains(out, "\x1b[") {
		t.Errorf("pull into a pipe printed escape sequences:\n%q", out)
	}
	if !strings.Contains(out, ": done (") || !strings.Contains(out, "pulled ") {
		t.Errorf("pull output lacks per-blob done lines or the summary:\n%s", out)
	}

	imgs := decode[[]imageJSON](t, "images --format json", e.mustGantry("images", "--format", "json"))
	if len(imgs) != 1 || !strings.HasSuffix(imgs[0].Name, "busybox:1") || !strings.HasPrefix(imgs[0].Digest, "sha256:") || imgs[0].Size <= 0 {
		t.Fatalf("images = %+v, want the one pulled image with a digest and a size", imgs)
	}
	name, target := imgs[0].Name, imgs[0].Digest

	// A second pull downloads nothing new and keeps one image.
	e.mustGantry("pull", "--quiet", ref)

	type inspectJSON struct {
		Name   string `json:"name"`
		Config struct {
			Architecture string `json:"architecture"`
			OS           string `json:"os"`
			RootFS       struct {
				DiffIDs []string `json:"diff_ids"`
			} `json:"rootfs"`
		} `json:"config"`
		Manifest struct {
			Layers []struct {
				Digest string `json:"digest"`
			} `json:"layers"`
		} `json:"manifest"`
	}
	ins := decode[[]inspectJSON](t, "inspect", e.mustGantry("inspect", name))
	if len(ins) != 1 || ins[0].Config.OS != "linux" || len(ins[0].Config.RootFS.DiffIDs) == 0 || len(ins[0].Manifest.Layers) == 0 {
		t.Fatalf("inspect = %+v, want the config and manifest of the image", ins)
	}

	// content ls lists the target; content cat gives bytes that hash to it.
	if ls := e.mustGantry("content", "ls", "-q"); !strings.Contains(ls, target) || !strings.Contains(ls, ins[0].Manifest.Layers[0].Digest) {
		t.Errorf("content ls lacks the manifest %s or the layer:\n%s", target, ls)
	}
	blob := e.mustGantry("content", "cat", target)
	sum := sha256.Sum256([]byte(blob))
	if "sha256:"+hex.EncodeToString(sum[:]) != target {
		t.Errorf("content cat %s returned bytes hashing to sha256:%x", target, sum)
	}
	// The file name in the store is the digest.
	if _, err := os.Stat(filepath.Join(e.root, "content", "blobs", "sha256", strings.TrimPrefix(target, "sha256:"))); err != nil {
		t.Errorf("blob not at its digest's path: %v", err)
	}

	// snapshot ls shows committed layers; snapshot mounts gives a mount line.
	snaps := e.mustGantry("snapshot", "ls")
	lines := strings.Split(strings.TrimSpace(snaps), "\n")
	if len(lines) < 2 || !strings.Contains(snaps, "committed") {
		t.Fatalf("snapshot ls shows no committed snapshot:\n%s", snaps)
	}
	key := strings.Fields(lines[1])[0]
	if m := e.mustGantry("snapshot", "mounts", key, "/mnt/x"); !strings.HasPrefix(m, "mount -t ") || !strings.Contains(m, " /mnt/x") {
		t.Errorf("snapshot mounts %s = %q, want a mount command for /mnt/x", key, m)
	}

	// system check is clean after a pull.
	if out := e.mustGantry("system", "check"); !strings.Contains(out, "0 problem(s)") {
		t.Errorf("system check after pull:\n%s", out)
	}

	// tag, then both names are listed, pointing at one target.
	e.mustGantry("tag", name, "example.test/mine:v1")
	imgs = decode[[]imageJSON](t, "images after tag", e.mustGantry("images", "--format", "json"))
	if len(imgs) != 2 || imgs[0].Digest != imgs[1].Digest {
		t.Fatalf("images after tag = %+v, want two names for one digest", imgs)
	}

	before := decode[diskUsageJSON](t, "df", e.mustGantry("system", "df", "--format", "json"))
	if before.ContentBytes <= 0 || before.SnapshotBytes <= 0 || len(before.Images) != 2 || before.ReclaimableBytes != 0 {
		t.Fatalf("df before rmi = %+v, want content and snapshots, two images, nothing reclaimable", before)
	}

	// Removing one name of two frees nothing; removing the last frees all.
	if out := e.mustGantry("rmi", "example.test/mine:v1"); !strings.Contains(out, "reclaimed: 0 B") {
		t.Errorf("rmi of a second name reclaimed something:\n%s", out)
	}
	out = e.mustGantry("rmi", name)
	if strings.Contains(out, "reclaimed: 0 B") {
		t.Errorf("rmi of the last name reclaimed nothing:\n%s", out)
	}
	after := decode[diskUsageJSON](t, "df after rmi", e.mustGantry("system", "df", "--format", "json"))
	if after.ContentBytes != 0 || after.SnapshotBytes != 0 || len(after.Blobs) != 0 || len(after.Snapshots) != 0 || len(after.Images) != 0 {
		t.Errorf("df after rmi = %+v, want everything reclaimed (before: %d content + %d snapshot bytes)", after, before.ContentBytes, before.SnapshotBytes)
	}
	if out := e.mustGantry("system", "check"); !strings.Contains(out, "0 problem(s)") {
		t.Errorf("system check after rmi:\n%s", out)
	}

	// rmi of an unknown image: one clear line, exit 1.
	_, stderr, code := e.gantry("rmi", "nosuch:image")
	if code != 1 || !strings.Contains(stderr, "not found") {
		t.Errorf("rmi nosuch: exit %d, stderr %q; want 1 and not found", code, stderr)
	}
}

func TestNamespacesKeepImagesApart(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	registry.PushBusybox(t, reg, "busybox:ns")
	e := newEnv(t)
	e.start()
	e.mustGantry("--namespace", "tenant-a", "pull", "-q", reg.Ref("busybox:ns"))
	a := decode[[]imageJSON](t, "images a", e.mustGantry("-n", "tenant-a", "images", "--format", "json"))
	d := decode[[]imageJSON](t, "images default", e.mustGantry("images", "--format", "json"))
	if len(a) != 1 || len(d) != 0 {
		t.Errorf("tenant-a has %d images, default %d; want 1 and 0", len(a), len(d))
	}
}

func TestExportImport(t *testing.T) {
	reg := registry.Start(t, registry.Options{})
	registry.PushBusybox(t, reg, "busybox:exp")
	e := newEnv(t)
	e.start()
	e.mustGantry("pull", "-q", reg.Ref("busybox:exp"))
	imgs := decode[[]imageJSON](t, "images", e.mustGantry("images", "--format", "json"))
	tarPath := filepath.Join(e.dir, "busybox.tar")
	e.mustGantry("export", "-o", tarPath, imgs[0].Name)
	if st, err := os.Stat(tarPath); err != nil || st.Size() == 0 {
		t.Fatalf("export wrote %v, %v", st, err)
	}
	out := e.mustGantry("-n", "imported", "import", tarPath)
	if !strings.Contains(out, "imported: ") || !strings.Contains(out, imgs[0].Digest) {
		t.Errorf("import output %q lacks the image and its digest %s", out, imgs[0].Digest)
	}
	got := decode[[]imageJSON](t, "imported images", e.mustGantry("-n", "imported", "images", "--format", "json"))
	if len(got) != 1 || got[0].Digest != imgs[0].Digest {
		t.Errorf("imported images = %+v, want the exported digest %s", got, imgs[0].Digest)
	}
}
