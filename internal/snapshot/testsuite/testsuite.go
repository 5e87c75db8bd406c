package testsuite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// NewFunc makes a snapshotter rooted in root (an empty directory); it may
// call t.Skip when the backend cannot work here.
type NewFunc func(t *testing.T, root string) snapshot.Snapshotter

// Run runs the whole suite as subtests of t.
func Run(t *testing.T, newSnapshotter NewFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, ctx context.Context, sn snapshot.Snapshotter)
	}{
		{"CommitChain", testCommitChain},
		{"Errors", testErrors},
		{"Remove", testRemove},
		{"Walk", testWalk},
		{"Usage", testUsage},
		{"DeepChain", testDeepChain},
		{"ReadOnlyView", testReadOnlyView},
		{"CommitOnto", testCommitOnto},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sn := newSnapshotter(t, t.TempDir())
			t.Cleanup(func() { sn.Close() })
			tc.fn(t, context.Background(), sn)
		})
	}
	t.Run("Reopen", func(t *testing.T) { testReopen(t, newSnapshotter) })
}

// Use mounts mounts on a fresh directory and calls fn with it. Without root
// it hands fn the source of a single bind mount instead (and skips the test
// for anything else).
func Use(t *testing.T, mounts []snapshot.Mount, fn func(dir string)) {
	t.Helper()
	if os.Geteuid() != 0 {
		if len(mounts) != 1 || mounts[0].Type != "bind" {
			t.Skipf("mounting %v needs root", mounts)
		}
		fn(mounts[0].Source)
		return
	}
	target := t.TempDir()
	// Registered after TempDir, so it runs before the directory is removed.
	t.Cleanup(func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	if err := snapshot.MountAll(mounts, target); err != nil {
		t.Fatalf("mount %v: %v", mounts, err)
	}
	defer func() {
		if err := snapshot.UnmountAll(target); err != nil {
			t.Errorf("unmount %q: %v", target, err)
		}
	}()
	fn(target)
}

func write(t *testing.T, dir, name, data string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.Remove(filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

// expect checks dir's files: a value of "" means the file must be absent.
func expect(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, want := range files {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if want == "" {
			if !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s: want absent, got %q (err %v)", name, b, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", name, err)
		} else if string(b) != want {
			t.Errorf("%s: got %q, want %q", name, b, want)
		}
	}
}

func mustMounts(t *testing.T) func([]snapshot.Mount, error) []snapshot.Mount {
	return func(m []snapshot.Mount, err error) []snapshot.Mount {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
}

func mustInfo(t *testing.T) func(snapshot.Info, error) snapshot.Info {
	return func(i snapshot.Info, err error) snapshot.Info {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
}

func commitLayer(t *testing.T, ctx context.Context, sn snapshot.Snapshotter, name, parent string, fn func(dir string)) {
	t.Helper()
	key := name + "-active"
	mounts := mustMounts(t)(sn.Prepare(ctx, key, parent))
	Use(t, mounts, fn)
	if err := sn.Commit(ctx, name, key); err != nil {
		t.Fatalf("commit %q: %v", key, err)
	}
}

func testCommitChain(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
	commitLayer(t, ctx, sn, "a", "", func(dir string) {
		write(t, dir, "a.txt", "a")
		write(t, dir, "d/keep", "k")
		write(t, dir, "d/gone", "g")
		write(t, dir, "rm.txt", "r")
	})
	commitLayer(t, ctx, sn, "b", "a", func(dir string) {
		expect(t, dir, map[string]string{"a.txt": "a", "d/keep": "k", "rm.txt": "r"})
		write(t, dir, "b.txt", "b")
		write(t, dir, "a.txt", "a2")
		remove(t, dir, "rm.txt")
		remove(t, dir, "d/gone")
	})
	info := mustInfo(t)(sn.Stat(ctx, "b"))
	if info.Kind != snapshot.KindCommitted || info.Parent != "a" || info.Key != "b" {
		t.Errorf("stat b: %+v", info)
	}
	if _, err := sn.Stat(ctx, "b-active"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stat b-active after commit: got %v, want ErrNotFound", err)
	}
	Use(t, mustMounts(t)(sn.View(ctx, "vb", "b")), func(dir string) {
		expect(t, dir, map[string]string{"a.txt": "a2", "b.txt": "b", "d/keep": "k", "d/gone": "", "rm.txt": ""})
	})
	Use(t, mustMounts(t)(sn.View(ctx, "va", "a")), func(dir string) {
		expect(t, dir, map[string]string{"a.txt": "a", "b.txt": "", "d/gone": "g", "rm.txt": "r"})
	})
	if info := mustInfo(t)(sn.Stat(ctx, "va")); info.Kind != snapshot.KindView || info.Parent != "a" {
		t.Errorf("stat va: %+v", info)
	}
	// Mounts of an existing active snapshot show its contents again.
	mustMounts(t)(sn.Prepare(ctx, "c", "b"))
	Use(t, mustMounts(t)(sn.Mounts(ctx, "c")), func(dir string) {
		expect(t, dir, map[string]string{"b.txt": "b", "rm.txt": ""})
	})
	Use(t, mustMounts(t)(sn.Mounts(ctx, "b")), func(dir string) {
		expect(t, dir, map[string]string{"a.txt": "a2", "b.txt": "b"})
	})
}

func testErrors(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
	commitLayer(t, ctx, sn, "base", "", func(dir string) { write(t, dir, "f", "x") })
	mustMounts(t)(sn.Prepare(ctx, "active", "base"))
	mustMounts(t)(sn.View(ctx, "view", "base"))
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"stat missing", second(sn.Stat(ctx, "nope")), errdefs.ErrNotFound},
		{"mounts missing", second(sn.Mounts(ctx, "nope")), errdefs.ErrNotFound},
		{"usage missing", second(sn.Usage(ctx, "nope")), errdefs.ErrNotFound},
		{"prepare missing parent", second(sn.Prepare(ctx, "x1", "nope")), errdefs.ErrNotFound},
		{"view missing parent", second(sn.View(ctx, "x2", "nope")), errdefs.ErrNotFound},
		{"prepare taken key", second(sn.Prepare(ctx, "active", "base")), errdefs.ErrAlreadyExists},
		{"prepare on committed key", second(sn.Prepare(ctx, "base", "")), errdefs.ErrAlreadyExists},
		{"prepare on active parent", second(sn.Prepare(ctx, "x3", "active")), errdefs.ErrFailedPrecondition},
		{"prepare on view parent", second(sn.Prepare(ctx, "x4", "view")), errdefs.ErrFailedPrecondition},
		{"commit view", sn.Commit(ctx, "x5", "view"), errdefs.ErrFailedPrecondition},
		{"commit committed", sn.Commit(ctx, "x6", "base"), errdefs.ErrFailedPrecondition},
		{"commit onto taken name", sn.Commit(ctx, "base", "active"), errdefs.ErrAlreadyExists},
		{"commit missing", sn.Commit(ctx, "x7", "nope"), errdefs.ErrNotFound},
		{"remove missing", sn.Remove(ctx, "nope"), errdefs.ErrNotFound},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// Failed calls leave nothing behind.
	for _, k := range []string{"x1", "x2", "x3", "x4", "x5", "x6", "x7"} {
		if _, err := sn.Stat(ctx, k); !errors.Is(err, errdefs.ErrNotFound) {
			t.Errorf("stat %q after failed call: %v", k, err)
		}
	}
	if info := mustInfo(t)(sn.Stat(ctx, "active")); info.Kind != snapshot.KindActive {
		t.Errorf("active after failed commit: %+v", info)
	}
}

func second[T any](_ T, err error) error { return err }

func testRemove(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
	commitLayer(t, ctx, sn, "a", "", func(dir string) { write(t, dir, "f", "x") })
	mustMounts(t)(sn.Prepare(ctx, "child", "a"))
	mustMounts(t)(sn.View(ctx, "view", "a"))
	if err := sn.Remove(ctx, "a"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("remove parent with children: got %v, want ErrFailedPrecondition", err)
	}
	mustInfo(t)(sn.Stat(ctx, "a"))
	for _, k := range []string{"child", "view"} {
		if err := sn.Remove(ctx, k); err != nil {
			t.Fatalf("remove %q: %v", k, err)
		}
	}
	if err := sn.Remove(ctx, "a"); err != nil {
		t.Fatalf("remove a after its children: %v", err)
	}
	n := 0
	if err := sn.Walk(ctx, func(snapshot.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("walk after removing everything: %d snapshots", n)
	}
	// The key can be used again.
	mustMounts(t)(sn.Prepare(ctx, "a", ""))
}

func testWalk(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
	commitLayer(t, ctx, sn, "a", "", func(dir string) { write(t, dir, "f", "x") })
	mustMounts(t)(sn.Prepare(ctx, "b", "a"))
	mustMounts(t)(sn.View(ctx, "v", "a"))
	got := map[string]snapshot.Info{}
	err := sn.Walk(ctx, func(i snapshot.Info) error {
		got[i.Key] = i
		// Walk must allow calls back into the snapshotter (GC removes while walking).
		_, err := sn.Stat(ctx, i.Key)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		kind   snapshot.Kind
		parent string
	}{"a": {snapshot.KindCommitted, ""}, "b": {snapshot.KindActive, "a"}, "v": {snapshot.KindView, "a"}}
	if len(got) != len(want) {
		t.Errorf("walk: got %d snapshots %v, want %d", len(got), got, len(want))
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || g.Kind != w.kind || g.Parent != w.parent || g.Created.IsZero() {
			t.Errorf("walk %q: got %+v, want kind %s parent %q", k, g, w.kind, w.parent)
		}
	}
	stop := errors.New("stop")
	if err := sn.Walk(ctx, func(snapshot.Info) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("walk returning an error: got %v", err)
	}
}

func testUsage(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
	const size = 1 << 20
	mounts := mustMounts(t)(sn.Prepare(ctx, "u-active", ""))
	Use(t, mounts, func(dir string) {
		write(t, dir, "big", strings.Repeat("x", size))
		if err := os.Link(filepath.Join(dir, "big"), filepath.Join(dir, "big2")); err != nil {
			t.Fatal(err)
		}
	})
	if err := sn.Commit(ctx, "u", "u-active"); err != nil {
		t.Fatal(err)
	}
	u, err := sn.Usage(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	// The directory and one inode for both links.
	if u.Inodes != 2 {
		t.Errorf("usage inodes: got %d, want 2", u.Inodes)
	}
	if u.Size < size || u.Size > size+size/2 {
		t.Errorf("usage size: got %d, want about %d (hardlink counted once)", u.Size, size)
	}
}

func testDeepChain(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
	// Enough layers that the overlay lowerdir option exceeds one page.
	const layers = 100
	parent := ""
	for i := range layers {
		name := fmt.Sprintf("layer-%d", i)
		commitLayer(t, ctx, sn, name, parent, func(dir string) {
			write(t, dir, fmt.Sprintf("f%d", i), name)
			write(t, dir, "top", name)
		})
		parent = name
	}
	Use(t, mustMounts(t)(sn.View(ctx, "top-view", parent)), func(dir string) {
		want := map[string]string{"top": parent}
		for i := range layers {
			want[fmt.Sprintf("f%d", i)] = fmt.Sprintf("layer-%d", i)
		}
		expect(t, dir, want)
	})
	// A writable snapshot on the whole chain mounts too.
	Use(t, mustMounts(t)(sn.Prepare(ctx, "top-active", parent)), func(dir string) {
		write(t, dir, "new", "n")
		expect(t, dir, map[string]string{"new": "n", "f0": "layer-0"})
	})
}

func testReadOnlyView(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
	if os.Geteuid() != 0 {
		t.Skip("read-only mounts need root")
	}
	commitLayer(t, ctx, sn, "a", "", func(dir string) { write(t, dir, "f", "x") })
	commitLayer(t, ctx, sn, "b", "a", func(dir string) { write(t, dir, "g", "y") })
	for _, parent := range []string{"a", "b"} {
		Use(t, mustMounts(t)(sn.View(ctx, "view-"+parent, parent)), func(dir string) {
			err := os.WriteFile(filepath.Join(dir, "new"), nil, 0o644)
			if !errors.Is(err, unix.EROFS) {
				t.Errorf("write into view of %q: got %v, want EROFS", parent, err)
			}
		})
	}
}

func testReopen(t *testing.T, newSnapshotter NewFunc) {
	ctx := context.Background()
	root := t.TempDir()
	sn := newSnapshotter(t, root)
	commitLayer(t, ctx, sn, "a", "", func(dir string) { write(t, dir, "f", "x") })
	mustMounts(t)(sn.Prepare(ctx, "b", "a"))
	if err := sn.Close(); err != nil {
		t.Fatal(err)
	}
	sn = newSnapshotter(t, root)
	t.Cleanup(func() { sn.Close() })
	if info := mustInfo(t)(sn.Stat(ctx, "b")); info.Kind != snapshot.KindActive || info.Parent != "a" {
		t.Errorf("stat b after reopen: %+v", info)
	}
	Use(t, mustMounts(t)(sn.View(ctx, "v", "a")), func(dir string) {
		expect(t, dir, map[string]string{"f": "x"})
	})
}

// testCommitOnto (snapshotters that implement snapshot.ParentCommitter):
// layers written in overlay form before their parent exists, then
// committed in order onto it, show the same tree as layers prepared on
// their parents; the errors of CommitOnto.
func testCommitOnto(t *testing.T, ctx context.Context, sn snapshot.Snapshotter) {
	pc, ok := sn.(snapshot.ParentCommitter)
	if !ok {
		t.Skip("the snapshotter has no CommitOnto")
	}
	if os.Geteuid() != 0 {
		t.Skip("overlay whiteouts need root")
	}
	// Both layers are written before either is committed.
	keys := []string{"l0-active", "l1-active"}
	dirs := make([]string, 2)
	for i, k := range keys {
		mounts := mustMounts(t)(sn.Prepare(ctx, k, ""))
		if len(mounts) != 1 || mounts[0].Type != "bind" {
			t.Fatalf("prepare %q with no parent: mounts %v, want one bind mount", k, mounts)
		}
		dirs[i] = mounts[0].Source
	}
	write(t, dirs[1], "b.txt", "b")
	write(t, dirs[1], "d/new", "n")
	if err := unix.Mknod(filepath.Join(dirs[1], "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	write(t, dirs[0], "a.txt", "a")
	write(t, dirs[0], "gone", "g")
	write(t, dirs[0], "d/old", "o")

	// Onto a parent that is missing, or not committed yet.
	if err := pc.CommitOnto(ctx, "l1", keys[1], "l0"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("commit onto a missing parent: got %v, want ErrNotFound", err)
	}
	if err := pc.CommitOnto(ctx, "l1", keys[1], keys[0]); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("commit onto an active parent: got %v, want ErrFailedPrecondition", err)
	}
	if err := sn.Commit(ctx, "l0", keys[0]); err != nil {
		t.Fatal(err)
	}
	if err := pc.CommitOnto(ctx, "l1", keys[1], "l0"); err != nil {
		t.Fatalf("commit onto l0: %v", err)
	}
	if info := mustInfo(t)(sn.Stat(ctx, "l1")); info.Kind != snapshot.KindCommitted || info.Parent != "l0" {
		t.Errorf("stat l1: %+v", info)
	}
	if _, err := sn.Stat(ctx, keys[1]); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("stat %s after commit: got %v, want ErrNotFound", keys[1], err)
	}
	Use(t, mustMounts(t)(sn.View(ctx, "v", "l1")), func(dir string) {
		expect(t, dir, map[string]string{"a.txt": "a", "b.txt": "b", "d/old": "o", "d/new": "n", "gone": ""})
	})
	// l0 is l1's parent now.
	if err := sn.Remove(ctx, "l0"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("remove the parent l0: got %v, want ErrFailedPrecondition", err)
	}

	// A key that has a parent, a name that is taken.
	mustMounts(t)(sn.Prepare(ctx, "on-l1", "l1"))
	if err := pc.CommitOnto(ctx, "x", "on-l1", "l0"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Errorf("commit onto of a key with a parent: got %v, want ErrFailedPrecondition", err)
	}
	mustMounts(t)(sn.Prepare(ctx, "free", ""))
	if err := pc.CommitOnto(ctx, "l1", "free", "l0"); !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Errorf("commit onto a taken name: got %v, want ErrAlreadyExists", err)
	}
	if err := pc.CommitOnto(ctx, "y", "missing", "l0"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Errorf("commit onto of a missing key: got %v, want ErrNotFound", err)
	}
}
