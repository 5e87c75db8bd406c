package image

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/snapshot/native"
	"github.com/gantry-project/gantry/test/registry"
)

func newService(t *testing.T) *Service {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("unpacking images keeps owners and device nodes: needs root")
	}
	root := t.TempDir()
	cs, err := content.NewStore(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	db, err := metadata.Open(filepath.Join(root, "metadata.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sn, err := native.New(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	return New(db, cs, sn)
}

func countBlobs(t *testing.T, s *Service) int {
	t.Helper()
	n := 0
	if err := s.Content.Walk(context.Background(), func(content.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPullTagRemove(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	r := registry.Start(t, registry.Options{})
	registry.PushBusybox(t, r, "busybox:latest")
	registry.PushMultiArch(t, r, "multi:latest")

	img, err := s.Pull(ctx, "default", r.Ref("busybox:latest"), remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img.Name != r.Ref("busybox:latest") || len(img.Snapshots) != 1 || len(img.Blobs) != 3 {
		t.Fatalf("image %+v", img)
	}
	for _, c := range img.Snapshots {
		if _, err := s.Snapshotter.Stat(ctx, c); err != nil {
			t.Fatalf("snapshot %s: %v", c, err)
		}
	}
	d, err := s.Inspect(ctx, "default", img.Name)
	if err != nil {
		t.Fatal(err)
	}
	if d.Config.Architecture == "" || len(d.Parsed.Layers) != 1 || d.Size <= 0 {
		t.Fatalf("inspect %+v", d)
	}
	if _, err := s.Tag(ctx, "default", img.Name, "example.test/copy:v1"); err != nil {
		t.Fatal(err)
	}
	multi, err := s.Pull(ctx, "default", r.Ref("multi:latest"), remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !remote.IsIndex(multi.Target.MediaType) || len(multi.Snapshots) != 2 {
		t.Fatalf("multi %+v", multi)
	}
	list, err := s.List(ctx, "default")
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d images, %v; want 3", len(list), err)
	}
	u, err := s.DiskUsage(ctx, "default")
	if err != nil {
		t.Fatal(err)
	}
	if len(u.Images) != 3 || u.ContentSize <= 0 || u.SnapshotSize <= 0 || u.Reclaimable != 0 {
		t.Fatalf("usage %+v", u)
	}
	for _, iu := range u.Images {
		if len(iu.Layers) == 0 || iu.Layers[0].BlobSize <= 0 || iu.Layers[0].SnapshotSize <= 0 {
			t.Fatalf("usage of %s: %+v", iu.Name, iu)
		}
	}

	// Removing one of two names frees nothing; removing the last frees its blobs.
	before := countBlobs(t, s)
	rep, err := s.Remove(ctx, "default", img.Name, RemoveOptions{})
	if err != nil || len(rep.Blobs) != 0 {
		t.Fatalf("remove first name: %+v, %v", rep, err)
	}
	rep, err = s.Remove(ctx, "default", "example.test/copy:v1", RemoveOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// busybox's layer (and its snapshot) is shared with multi's amd64
	// image: only the manifest and config go.
	freed := map[string]bool{}
	for _, b := range rep.Blobs {
		freed[b.String()] = true
	}
	if len(rep.Blobs) != 2 || !freed[img.Target.Digest.String()] || !freed[d.Parsed.Config.Digest.String()] || len(rep.Snapshots) != 0 || countBlobs(t, s) != before-2 {
		t.Fatalf("remove last name: %+v; %d blobs left of %d", rep, countBlobs(t, s), before)
	}
	if _, err := s.Content.Info(ctx, d.Parsed.Layers[0].Digest); err != nil {
		t.Fatalf("shared layer removed: %v", err)
	}
	if _, err := s.Remove(ctx, "default", multi.Name, RemoveOptions{}); err != nil {
		t.Fatal(err)
	}
	if n := countBlobs(t, s); n != 0 {
		t.Fatalf("%d blobs left after removing every image", n)
	}
	if _, err := s.Remove(ctx, "default", "example.test/copy:v1", RemoveOptions{}); !errdefs.IsNotFound(err) {
		t.Fatalf("remove again: %v", err)
	}
}

func TestPullFailureCollects(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	r := registry.Start(t, registry.Options{})
	registry.PushMultiArch(t, r, "multi:latest")
	// s390x is not in the index: the index is fetched, then the pull fails.
	_, err := s.Pull(ctx, "default", r.Ref("multi:latest"), remote.Options{Platform: mustPlatform(t, "linux/s390x")})
	if !errdefs.IsNotFound(err) {
		t.Fatalf("err = %v; want ErrNotFound", err)
	}
	if n := countBlobs(t, s); n != 0 {
		t.Fatalf("%d blobs left after a failed pull", n)
	}
}

func mustPlatform(t *testing.T, s string) (p ocispecPlatform) {
	t.Helper()
	p, err := remote.ParsePlatform(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestExportImport(t *testing.T) {
	ctx := context.Background()
	r := registry.Start(t, registry.Options{})
	registry.PushBusybox(t, r, "busybox:latest")
	registry.Push(t, r, "whiteout:latest", registry.WhiteoutImage(t))
	src := newService(t)
	var names []string
	for _, n := range []string{"busybox:latest", "whiteout:latest"} {
		img, err := src.Pull(ctx, "default", r.Ref(n), remote.Options{})
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, img.Name)
	}
	var buf bytes.Buffer
	if err := src.Export(ctx, "default", names, &buf); err != nil {
		t.Fatal(err)
	}
	dst := newService(t)
	imgs, err := dst.Import(ctx, "default", bytes.NewReader(buf.Bytes()), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 {
		t.Fatalf("imported %d images, want 2", len(imgs))
	}
	for i, img := range imgs {
		want, err := src.DB.GetImage(ctx, "default", names[i])
		if err != nil {
			t.Fatal(err)
		}
		if img.Name != want.Name || img.Target.Digest != want.Target.Digest || strings.Join(img.Snapshots, ",") != strings.Join(want.Snapshots, ",") {
			t.Fatalf("imported %+v, exported %+v", img, want)
		}
	}

	// The same archive read as a docker-save tarball (manifest.json only).
	dockerOnly := stripEntries(t, buf.Bytes(), "index.json")
	d2 := newService(t)
	imgs, err = d2.Import(ctx, "default", bytes.NewReader(dockerOnly), ImportOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || imgs[0].Name != names[0] || imgs[0].Target.MediaType != remote.MediaTypeDockerManifest || len(imgs[0].Snapshots) != 1 {
		t.Fatalf("docker-save import: %+v", imgs)
	}

	// A blob whose content does not match its name is refused.
	bad := corruptBlob(t, buf.Bytes())
	if _, err := newService(t).Import(ctx, "default", bytes.NewReader(bad), ImportOptions{}); !errdefs.IsInvalidArgument(err) {
		t.Fatalf("corrupt blob: err = %v; want ErrInvalidArgument", err)
	}
}
