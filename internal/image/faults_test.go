package image

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/remote/remotetest"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/native"
	"github.com/gantry-project/gantry/internal/unpack"
	"github.com/gantry-project/gantry/test/registry"
)

func layerDigests(t *testing.T, img *registry.Image) []string {
	t.Helper()
	var out []string
	for _, l := range img.Layers {
		out = append(out, l.Digest.String())
	}
	return out
}

func configDigest(t *testing.T, img *registry.Image) string {
	t.Helper()
	return img.ConfigDigest().String()
}

// snapshotKeys lists the snapshots as key/kind.
func snapshotKeys(t *testing.T, sn snapshot.Snapshotter) []string {
	t.Helper()
	var out []string
	if err := sn.Walk(context.Background(), func(i snapshot.Info) error {
		out = append(out, i.Key+"/"+i.Kind.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// listTree lists the entries under dir (relative, with file contents).
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	if err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			rel += "=" + string(b)
		}
		out = append(out, rel)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestPullEscapingLayer pulls layers that try to reach outside their
// snapshot; each pull fails naming the layer, or neutralises the entry, and
// nothing outside the snapshot changes.
func TestPullEscapingLayer(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	r := registry.Start(t, registry.Options{})
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	depth := strings.Repeat("../", 12)
	const (
		refuse  = iota // the pull must fail with ErrInvalidArgument
		contain        // the pull may fail; if it succeeds, inside names the entry's place in the snapshot
	)
	for _, tc := range []struct {
		name   string
		files  []registry.File
		want   int
		inside string
	}{
		{name: "dotdot name", files: []registry.File{{Name: "../../../../escape", Data: []byte("x")}}, want: refuse},
		{name: "dotdot inside name", files: []registry.File{{Name: "a/", Type: tar.TypeDir}, {Name: "a/../../escape", Data: []byte("x")}}, want: refuse},
		{name: "absolute name", files: []registry.File{{Name: outside + "/abs", Data: []byte("x")}}, want: contain, inside: outside + "/abs"},
		// A symlink is resolved as if the snapshot were /: its target is
		// not there, so the writes through it fail (containerd would
		// create the directories inside; either way nothing escapes).
		{name: "absolute symlink then write", files: []registry.File{
			{Name: "evil", Type: tar.TypeSymlink, Linkname: outside},
			{Name: "evil/pwned", Data: []byte("x")},
		}, want: contain, inside: outside + "/pwned"},
		{name: "relative symlink then write", files: []registry.File{
			{Name: "d/", Type: tar.TypeDir},
			{Name: "d/up", Type: tar.TypeSymlink, Linkname: depth + strings.TrimPrefix(outside, "/")},
			{Name: "d/up/pwned", Data: []byte("x")},
		}, want: contain, inside: outside + "/pwned"},
		{name: "symlink then directory through it", files: []registry.File{
			{Name: "evil", Type: tar.TypeSymlink, Linkname: outside},
			{Name: "evil/sub/", Type: tar.TypeDir},
			{Name: "evil/sub/pwned", Data: []byte("x")},
		}, want: contain, inside: outside + "/sub/pwned"},
		{name: "symlink replaced by write", files: []registry.File{
			{Name: "evil", Type: tar.TypeSymlink, Linkname: outside + "/secret"},
			{Name: "evil", Data: []byte("overwritten")},
		}, want: contain, inside: "evil"},
		{name: "hardlink dotdot", files: []registry.File{{Name: "hl", Type: tar.TypeLink, Linkname: depth + strings.TrimPrefix(outside, "/") + "/secret"}}, want: refuse},
		// An absolute target is taken inside the snapshot, where it is not.
		{name: "hardlink absolute", files: []registry.File{{Name: "hl", Type: tar.TypeLink, Linkname: outside + "/secret"}}, want: contain},
		{name: "hardlink through symlink", files: []registry.File{
			{Name: "evil", Type: tar.TypeSymlink, Linkname: outside},
			{Name: "hl", Type: tar.TypeLink, Linkname: "evil/secret"},
		}, want: refuse},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := registry.NewLayer(tc.files, registry.Gzip)
			if err != nil {
				t.Fatal(err)
			}
			img, err := registry.NewImage(registry.Platform{}, false, []string{"/bin/sh"}, l)
			if err != nil {
				t.Fatal(err)
			}
			tag := "escape:" + strings.ReplaceAll(tc.name, " ", "-")
			registry.Push(t, r, tag, img)
			ref := r.Ref(tag)
			layer := layerDigests(t, img)[0]
			got, err := s.Pull(ctx, "default", ref, remote.Options{})
			if tree := strings.Join(listTree(t, outside), " "); tree != ". secret=secret" {
				t.Fatalf("outside the snapshot changed: %q", tree)
			}
			if err != nil {
				t.Logf("error: %v", err)
				if tc.want == refuse && !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err = %v; want ErrInvalidArgument", err)
				}
				if !strings.Contains(err.Error(), "pull "+ref) || !strings.Contains(err.Error(), layer) {
					t.Fatalf("err = %v; want one naming %s and layer %s", err, ref, layer)
				}
				for _, k := range snapshotKeys(t, s.Snapshotter) {
					if !strings.HasSuffix(k, "/committed") {
						t.Fatalf("snapshot %s left by the failed unpack", k)
					}
				}
				if _, err := s.DB.GetImage(ctx, "default", ref); !errdefs.IsNotFound(err) {
					t.Fatalf("image recorded after a failed unpack: %v", err)
				}
				return
			}
			if tc.want == refuse {
				t.Fatal("pull succeeded; want it refused")
			}
			mounts, err := s.Snapshotter.Mounts(ctx, got.Snapshots[0])
			if err != nil || len(mounts) != 1 {
				t.Fatalf("mounts of %s: %+v, %v", got.Snapshots[0], mounts, err)
			}
			if tc.inside != "" {
				if _, err := os.Lstat(filepath.Join(mounts[0].Source, tc.inside)); err != nil {
					t.Fatalf("entry not inside the snapshot: %v", err)
				}
			}
		})
	}
}

// TestPullBomb pulls a layer of zeros that expands past the service's limit,
// then pulls it again with a larger limit without downloading it again.
func TestPullBomb(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	r := registry.Start(t, registry.Options{})
	tarball, err := registry.Tar([]registry.File{{Name: "zeros", Data: make([]byte, 64<<20)}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := registry.LayerFromTar(tarball, registry.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.NewImage(registry.Platform{}, false, []string{"/bin/sh"}, l)
	if err != nil {
		t.Fatal(err)
	}
	registry.Push(t, r, "bomb:latest", img)
	p := remotetest.New(t, r.URL())
	ref := p.Ref("bomb:latest")
	layer := layerDigests(t, img)[0]

	s.UnpackLimits = unpack.Limits{MaxLayerSize: 8 << 20}
	_, err = s.Pull(ctx, "default", ref, remote.Options{})
	t.Logf("error: %v", err)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "pull "+ref) || !strings.Contains(err.Error(), layer) || !strings.Contains(err.Error(), "limit of 8388608 bytes per layer") {
		t.Fatalf("err = %v; want ErrInvalidArgument naming the image, the layer and the limit", err)
	}
	if got := snapshotKeys(t, s.Snapshotter); len(got) != 0 {
		t.Fatalf("snapshots after the bomb: %v", got)
	}
	s.UnpackLimits = unpack.Limits{}
	if _, err := s.Pull(ctx, "default", ref, remote.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := p.Gets(layer); n != 1 {
		t.Fatalf("layer downloaded %d times, want once (kept for the retry)", n)
	}
}

// interruptImage is three small layers and a large one (uncompressed random
// data, so its bytes arrive as sent).
func interruptImage(t *testing.T, largeSize int64) *registry.Image {
	t.Helper()
	var ls []*registry.Layer
	for i := range 3 {
		l, err := registry.NewLayer([]registry.File{{Name: fmt.Sprintf("small%d", i), Data: bytes.Repeat([]byte{byte('a' + i)}, 1000)}}, registry.Gzip)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	large, err := registry.RandomLayer(largeSize, 42)
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.NewImage(registry.Platform{}, false, []string{"/bin/sh"}, append(ls, large)...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// TestPullInterrupted cancels a pull in the middle of its large layer, after
// the others were verified; the next pull downloads none of those again and
// resumes the large one with a Range request.
func TestPullInterrupted(t *testing.T) {
	s := newService(t)
	r := registry.Start(t, registry.Options{})
	img := interruptImage(t, 24<<20)
	registry.Push(t, r, "interrupt:latest", img)
	layers := layerDigests(t, img)
	large := layers[3]
	others := append([]string{configDigest(t, img)}, layers[:3]...)
	p := remotetest.New(t, r.URL())
	// The large layer stalls after 4 MiB: the pull is cancelled while it
	// waits, never by luck of timing.
	p.Add(remotetest.Rule{Match: remotetest.Blob(large), Times: 1, Stall: true, StallAfter: 4 << 20})
	ref := p.Ref("interrupt:latest")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	done := map[string]bool{}
	var largeSeen bool
	_, err := s.Pull(ctx, "default", ref, remote.Options{MaxConcurrent: 4, Progress: func(pr remote.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if pr.Done {
			done[pr.Digest.String()] = true
		}
		if pr.Digest.String() == large && pr.Offset > 0 {
			largeSeen = true
		}
		all := largeSeen
		for _, d := range others {
			all = all && done[d]
		}
		if all {
			cancel()
		}
	}})
	t.Logf("error: %v", err)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "pull "+ref) {
		t.Fatalf("err = %v; want context.Canceled naming %s", err, ref)
	}
	bg := context.Background()
	for _, d := range others {
		if _, err := s.Content.Info(bg, digest.Digest(d)); err != nil {
			t.Fatalf("verified blob %s gone after the failed pull: %v", d, err)
		}
	}
	if _, err := s.Content.Info(bg, digest.Digest(large)); !errdefs.IsNotFound(err) {
		t.Fatalf("partial layer visible: %v", err)
	}
	st, err := s.Content.IngestStatus(bg, "fetch-"+large)
	if err != nil || st.Offset <= 0 {
		t.Fatalf("ingest of the large layer: %+v, %v; want a partial one", st, err)
	}

	if _, err := s.Pull(bg, "default", ref, remote.Options{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range others {
		if n := p.Gets(d); n != 1 {
			t.Errorf("blob %s downloaded %d times, want once", d, n)
		}
	}
	if rg, want := p.Ranges(large), fmt.Sprintf("bytes=%d-", st.Offset); len(rg) != 2 || rg[1] != want {
		t.Fatalf("large layer Range headers %q; want a second GET with %s", rg, want)
	}
	// Success drops the retry lease.
	leases, err := s.DB.ListLeases(bg)
	if err != nil || len(leases) != 0 {
		t.Fatalf("leases after the pull: %+v, %v", leases, err)
	}
}

// TestPullNoSpace runs the content store on a 2 MiB tmpfs and pulls a larger
// image: the error names the layer and ENOSPC, nothing partial is visible, the
// ingest is kept, and after the tmpfs grows the retry resumes it.
func TestPullNoSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounts a tmpfs: needs root")
	}
	root := t.TempDir()
	csDir := filepath.Join(root, "content")
	if err := os.Mkdir(csDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", csDir, "tmpfs", 0, "size=2m,mode=0700"); err != nil {
		t.Skipf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(csDir, unix.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", csDir, err)
		}
	})
	cs, err := content.NewStore(csDir)
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
	s := New(db, cs, sn)

	r := registry.Start(t, registry.Options{})
	img := interruptImage(t, 6<<20)
	registry.Push(t, r, "big:latest", img)
	layers := layerDigests(t, img)
	large := layers[3]
	p := remotetest.New(t, r.URL())
	ref := p.Ref("big:latest")
	ctx := context.Background()

	_, err = s.Pull(ctx, "default", ref, remote.Options{})
	t.Logf("error: %v", err)
	// Layers download at once: the large one always runs out of space,
	// but a small one may be the first to, once the large one filled it.
	namesLayer := false
	for _, l := range layers {
		namesLayer = namesLayer || err != nil && strings.Contains(err.Error(), l)
	}
	if !errors.Is(err, unix.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "pull "+ref) || !namesLayer {
		t.Fatalf("err = %v; want ENOSPC naming %s and a layer", err, ref)
	}
	if _, err := cs.Info(ctx, digest.Digest(large)); !errdefs.IsNotFound(err) {
		t.Fatalf("partial layer visible: %v", err)
	}
	st, err := cs.IngestStatus(ctx, "fetch-"+large)
	if err != nil || st.Offset <= 0 || st.Offset >= st.Total {
		t.Fatalf("ingest after ENOSPC: %+v, %v; want a partial one kept for a resume", st, err)
	}
	if out, err := exec.Command("mount", "-o", "remount,size=64m", csDir).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
	if _, err := s.Pull(ctx, "default", ref, remote.Options{}); err != nil {
		t.Fatal(err)
	}
	if rg, want := p.Ranges(large), fmt.Sprintf("bytes=%d-", st.Offset); len(rg) != 2 || rg[1] != want {
		t.Fatalf("large layer Range headers %q; want a second GET with %s", rg, want)
	}
	if err := cs.Verify(ctx, digest.Digest(large)); err != nil {
		t.Fatal(err)
	}
}

// TestRecoverLeasesOfKilledPull: the lease of a pull whose process was
// killed (another owner) moves what exists of it to the retry lease of its
// image, as a failed pull's would; a killed import's lease goes; leases of
// this process and others' leases stay.
func TestRecoverLeasesOfKilledPull(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	var present []digest.Digest
	for _, b := range []string{"one", "two"} {
		d := digest.FromString(b)
		w, err := s.Content.Writer(ctx, "test-"+b, ocispec.Descriptor{Digest: d, Size: int64(len(b))})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(b)); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		present = append(present, d)
	}
	missing := digest.FromString("never written")
	retry := retryLeaseID("default", "docker.io/library/killed:latest")
	killedPull := "pull-0123456789ab-00112233aabbccdd." + strings.TrimPrefix(retry, retryLeasePrefix)
	killedImport := "import-0123456789ab-00112233aabbccdd"
	oldFormat := "pull-00112233aabbccdd"
	live := pullLeaseID(retryLeaseID("default", "docker.io/library/live:latest"))
	other := "cri-sandbox-1"
	for _, id := range []string{killedPull, killedImport, oldFormat, live, other} {
		if err := s.DB.AddLease(ctx, id, append(slices.Clone(present), missing), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecoverLeases(ctx); err != nil {
		t.Fatal(err)
	}
	leases, err := s.DB.ListLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]digest.Digest{}
	for _, l := range leases {
		got[l.ID] = l.Blobs
	}
	for _, id := range []string{killedPull, killedImport, oldFormat} {
		if _, ok := got[id]; ok {
			t.Errorf("lease %s of a killed process kept", id)
		}
	}
	for _, id := range []string{live, other} {
		if len(got[id]) != 3 {
			t.Errorf("lease %s = %v, want it untouched", id, got[id])
		}
	}
	if b, ok := got[retry]; !ok || !slices.Equal(b, present) {
		t.Errorf("retry lease %s = %v (exists %v), want the blobs that exist %v", retry, b, ok, present)
	}
	// A collection now keeps the killed pull's blobs for its retry.
	if _, err := s.DB.GarbageCollect(ctx, s.Content, s.Snapshotter, false); err != nil {
		t.Fatal(err)
	}
	for _, d := range present {
		if _, err := s.Content.Info(ctx, d); err != nil {
			t.Errorf("blob %s of the killed pull collected: %v", d, err)
		}
	}
}
