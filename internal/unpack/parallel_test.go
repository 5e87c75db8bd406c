package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/archive/archivetest"
	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/overlay"
)

// sequentialOnly hides CommitOnto: the unpack applies one layer after the
// other.
type sequentialOnly struct{ snapshot.Snapshotter }

// layerDir is the directory of the committed layer id of an overlay
// snapshotter.
func layerDir(t *testing.T, sn snapshot.Snapshotter, id string) string {
	t.Helper()
	mounts, err := sn.Mounts(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	dirs, err := lowerDirs(mounts)
	if err != nil {
		t.Fatal(err)
	}
	return dirs[0]
}

func newOverlay(t *testing.T) snapshot.Snapshotter {
	t.Helper()
	sn, err := overlay.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	return sn
}

// TestUnpackParallelMatchesSequential: the layers extracted at once and
// committed in order come out exactly as applied one after the other.
func TestUnpackParallelMatchesSequential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the overlay snapshotter needs root")
	}
	ctx := context.Background()
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t1 := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	t2 := time.Date(2022, 6, 7, 8, 9, 10, 0, time.UTC)
	layers := []layer{
		store(t, cs, layerTar(t,
			ent{name: "etc/", typ: tar.TypeDir, mode: 0o750, uid: 10, gid: 20, mtime: t1},
			ent{name: "etc/conf", body: "c"},
			ent{name: "srv/", typ: tar.TypeDir, mode: 0o2775, gid: 50, mtime: t2},
			ent{name: "o/", typ: tar.TypeDir}, ent{name: "o/old", body: "old"},
			ent{name: "gone", body: "g"}, ent{name: "shared", body: "s", mode: 0o600, uid: 7, mtime: t1},
			ent{name: "x", body: "x", xattrs: map[string]string{"user.k": "v"}},
		), "gzip"),
		store(t, cs, layerTar(t,
			// Implicit directories: etc (from layer 0), etc/new (none below).
			ent{name: "etc/new/f", body: "f"},
			ent{name: ".wh.gone"}, ent{name: "o/", typ: tar.TypeDir}, ent{name: "o/.wh..wh..opq"}, ent{name: "o/new", body: "n"},
			// srv is setgid below: srv/sub inherits its group.
			ent{name: "srv/sub/f", body: "f"},
			ent{name: "t", body: "t", mode: 0o755}, ent{name: "t2", typ: tar.TypeLink, link: "t"},
		), "zstd"),
		store(t, cs, layerTar(t,
			// A hardlink to a file of layer 0: applied again on its lowers.
			ent{name: "etc/conf2", body: "c2"}, ent{name: "shared-link", typ: tar.TypeLink, link: "shared"},
		), "gzip"),
		store(t, cs, layerTar(t,
			ent{name: "etc/new/g", body: "g"}, ent{name: "etc/new/.wh.f"},
			ent{name: "late/f", body: "f"}, ent{name: "late/", typ: tar.TypeDir, mode: 0o700, mtime: t2},
		), "none"),
	}
	m, c := image(layers...)
	chain := ChainIDs(c.RootFS.DiffIDs)
	par, seq := newOverlay(t), newOverlay(t)
	if _, err := Unpack(ctx, cs, par, m, c); err != nil {
		t.Fatalf("parallel unpack: %v", err)
	}
	if _, err := Unpack(ctx, cs, sequentialOnly{seq}, m, c); err != nil {
		t.Fatalf("sequential unpack: %v", err)
	}
	// Implicit directories with no lower directory have the times of
	// their creation.
	now := map[string]bool{"etc/new": true, "srv/sub": true, "late/": false}
	for i, id := range chain {
		noTime := func(rel string) bool { return rel == "." || now[rel] }
		got := archivetest.Tree(t, layerDir(t, par, id.String()), noTime)
		want := archivetest.Tree(t, layerDir(t, seq, id.String()), noTime)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("layer %d, parallel:\n%s\nsequential:\n%s", i, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		pi, err1 := par.Stat(ctx, id.String())
		si, err2 := seq.Stat(ctx, id.String())
		if err1 != nil || err2 != nil || pi.Parent != si.Parent || pi.Kind != snapshot.KindCommitted {
			t.Errorf("layer %d: parallel %+v %v, sequential %+v %v", i, pi, err1, si, err2)
		}
	}
	// The fix-ups did happen (not just equal by accident).
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(layerDir(t, par, chain[1].String()), "etc"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o750 || st.Uid != 10 || st.Gid != 20 || st.Mtim.Sec != t1.Unix() {
		t.Errorf("implicit etc of layer 1: %#o %d:%d %d, want layer 0's 0750 10:20 %d", st.Mode&0o7777, st.Uid, st.Gid, st.Mtim.Sec, t1.Unix())
	}
	if err := unix.Lstat(filepath.Join(layerDir(t, par, chain[1].String()), "srv/sub"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_ISGID == 0 || st.Gid != 50 {
		t.Errorf("implicit srv/sub of layer 1: %#o gid %d, want setgid and group 50 from srv", st.Mode&0o7777, st.Gid)
	}
	for name, sn := range map[string]snapshot.Snapshotter{"parallel": par, "sequential": seq} {
		if got := keys(t, sn); len(got) != len(chain) {
			t.Errorf("%s: snapshots %v, want the %d layers", name, got, len(chain))
		}
	}
}

// gatedOpener tells when a blob is first opened (opened), and holds the
// opening of another (gated) until the test lets it (release).
type gatedOpener struct {
	BlobOpener
	watched, gated digest.Digest
	opened         chan struct{}
	release        chan struct{}
	once           sync.Once
}

func (g *gatedOpener) Open(ctx context.Context, d digest.Digest) (*os.File, error) {
	if d == g.watched {
		g.once.Do(func() { close(g.opened) })
	}
	if d == g.gated {
		select {
		case <-g.release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.BlobOpener.Open(ctx, d)
}

// TestUnpackParallelFailures: a layer that fails while others extract
// leaves no snapshot of itself or of any layer above it, the layers below
// stay; a cancelled unpack leaves no extract-* snapshot.
func TestUnpackParallelFailures(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the overlay snapshotter needs root")
	}
	ctx := context.Background()
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var layers []layer
	for i := range 5 {
		var ents []ent
		for j := range 50 {
			ents = append(ents, ent{name: fmt.Sprintf("l%d/d%d/f%d", i, j%5, j), body: strings.Repeat("x", j)})
		}
		layers = append(layers, store(t, cs, layerTar(t, ents...), "gzip"))
	}

	t.Run("middle layer", func(t *testing.T) {
		sn := newOverlay(t)
		m, c := image(layers...)
		wrong := digest.FromString("not layer 2")
		c.RootFS.DiffIDs[2] = wrong
		chain := ChainIDs(c.RootFS.DiffIDs)
		// Layer 2 is read (and fails) only once layer 3 is extracting.
		g := &gatedOpener{BlobOpener: cs, watched: layers[3].desc.Digest, gated: layers[2].desc.Digest,
			opened: make(chan struct{}), release: make(chan struct{})}
		go func() {
			<-g.opened
			close(g.release)
		}()
		_, err := unpack(ctx, g, sn, m.Layers, c.RootFS, Options{})
		if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "layer 2") || !strings.Contains(err.Error(), wrong.String()) {
			t.Fatalf("got %v, want ErrInvalidArgument naming layer 2 and %s", err, wrong)
		}
		want := []string{chain[0].String() + "/committed", chain[1].String() + "/committed"}
		sort.Strings(want)
		if got := keys(t, sn); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("snapshots after the failure: %v, want %v", got, want)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		sn := newOverlay(t)
		m, c := image(layers...)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		// Cancelled while layer 3 waits to be read.
		g := &gatedOpener{BlobOpener: cs, watched: layers[3].desc.Digest, gated: layers[3].desc.Digest,
			opened: make(chan struct{}), release: make(chan struct{})}
		go func() {
			<-g.opened
			cancel()
		}()
		_, err := unpack(cctx, g, sn, m.Layers, c.RootFS, Options{})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		chain := ChainIDs(c.RootFS.DiffIDs)
		for _, k := range keys(t, sn) {
			// Layers below 3 may have been committed before the cancel.
			if k != chain[0].String()+"/committed" && k != chain[1].String()+"/committed" && k != chain[2].String()+"/committed" {
				t.Errorf("snapshot %s left after a cancelled unpack", k)
			}
		}
		// What is left is a valid base: the unpack completes on it.
		if top, err := Unpack(ctx, cs, sn, m, c); err != nil || top != chain[4].String() {
			t.Errorf("unpack after the cancel: %q %v", top, err)
		}
	})
}
