package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/native"
	"github.com/gantry-project/gantry/internal/snapshot/overlay"
	"github.com/gantry-project/gantry/internal/snapshot/testsuite"
)

type ent struct {
	name, body, link string
	typ              byte
	// Optional: mode (default 0644, dirs 0755), owner (default the
	// caller), mtime (default 2023-11-14), xattrs.
	mode     int64
	uid, gid int
	mtime    time.Time
	xattrs   map[string]string
}

func layerTar(t *testing.T, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: 0o644,
			Uid: os.Getuid(), Gid: os.Getgid(), ModTime: time.Unix(1700000000, 0)}
		switch h.Typeflag {
		case 0:
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.body))
		case tar.TypeDir:
			h.Mode = 0o755
		}
		if e.mode != 0 {
			h.Mode = e.mode
		}
		if e.uid != 0 || e.gid != 0 {
			h.Uid, h.Gid = e.uid, e.gid
		}
		if !e.mtime.IsZero() {
			h.ModTime = e.mtime
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type layer struct {
	desc   ocispec.Descriptor
	diffID digest.Digest
}

// store compresses the tar (gzip, zstd or none) into cs.
func store(t *testing.T, cs *content.Store, tarball []byte, compression string) layer {
	t.Helper()
	var blob bytes.Buffer
	switch compression {
	case "gzip":
		w := gzip.NewWriter(&blob)
		w.Write(tarball)
		w.Close()
	case "zstd":
		w, _ := zstd.NewWriter(&blob)
		w.Write(tarball)
		w.Close()
	default:
		blob.Write(tarball)
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob.Bytes()), Size: int64(blob.Len())}
	ctx := context.Background()
	w, err := cs.Writer(ctx, desc.Digest.String(), desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil && !errors.Is(err, errdefs.ErrAlreadyExists) {
		t.Fatal(err)
	}
	return layer{desc: desc, diffID: digest.FromBytes(tarball)}
}

func image(layers ...layer) (ocispec.Manifest, ocispec.Image) {
	var m ocispec.Manifest
	var c ocispec.Image
	c.RootFS.Type = "layers"
	for _, l := range layers {
		m.Layers = append(m.Layers, l.desc)
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, l.diffID)
	}
	return m, c
}

// counting counts Prepare calls.
type counting struct {
	snapshot.Snapshotter
	prepares atomic.Int32
}

func (c *counting) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	c.prepares.Add(1)
	return c.Snapshotter.Prepare(ctx, key, parent)
}

// countingOnto is counting for a snapshotter with CommitOnto (the unpack
// extracts its layers in parallel).
type countingOnto struct {
	*counting
	pc snapshot.ParentCommitter
}

func (c countingOnto) CommitOnto(ctx context.Context, name, key, parent string) error {
	return c.pc.CommitOnto(ctx, name, key, parent)
}

// count wraps base to count its Prepare calls, keeping its CommitOnto.
func count(base snapshot.Snapshotter) (snapshot.Snapshotter, *atomic.Int32) {
	c := &counting{Snapshotter: base}
	if pc, ok := base.(snapshot.ParentCommitter); ok {
		return countingOnto{counting: c, pc: pc}, &c.prepares
	}
	return c, &c.prepares
}

func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		switch {
		case rel == ".":
			return nil
		case fi.IsDir():
			rel += "/"
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			rel += ":" + string(b)
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

func snapshotters(t *testing.T) map[string]func(root string) (snapshot.Snapshotter, error) {
	m := map[string]func(string) (snapshot.Snapshotter, error){"native": native.New}
	if os.Geteuid() == 0 {
		m["overlay"] = overlay.New
	}
	return m
}

func keys(t *testing.T, sn snapshot.Snapshotter) []string {
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

func TestUnpack(t *testing.T) {
	for name, newSn := range snapshotters(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cs, err := content.NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			base, err := newSn(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { base.Close() })
			sn, prepares := count(base)
			_, parallel := base.(snapshot.ParentCommitter)

			l1 := store(t, cs, layerTar(t,
				ent{name: "a", body: "a"}, ent{name: "d/", typ: tar.TypeDir}, ent{name: "d/x", body: "x"}, ent{name: "d/y", body: "y"},
				ent{name: "o/", typ: tar.TypeDir}, ent{name: "o/old", body: "old"}, ent{name: "o/sub/", typ: tar.TypeDir}, ent{name: "o/sub/f", body: "f"},
				ent{name: "shared", body: "s"}), "gzip")
			l2 := store(t, cs, layerTar(t,
				ent{name: ".wh.a", body: ""}, ent{name: "d/", typ: tar.TypeDir}, ent{name: "d/.wh.x"},
				ent{name: "o/", typ: tar.TypeDir}, ent{name: "o/.wh..wh..opq"}, ent{name: "o/new", body: "new"},
				ent{name: "b", body: "b"}), "zstd")
			l3 := store(t, cs, layerTar(t,
				ent{name: "c", body: "c"}, ent{name: "c2", typ: tar.TypeLink, link: "c"},
				ent{name: "d/", typ: tar.TypeDir}, ent{name: "d/z", body: "z"},
				ent{name: "shared-link", typ: tar.TypeLink, link: "shared"}), "none")

			m, c := image(l1, l2, l3)
			top, err := Unpack(ctx, cs, sn, m, c)
			if err != nil {
				t.Fatalf("unpack: %v", err)
			}
			chain := ChainIDs(c.RootFS.DiffIDs)
			want2 := digest.FromString(digest.FromString(l1.diffID.String()+" "+l2.diffID.String()).String() + " " + l3.diffID.String())
			if chain[0] != l1.diffID || chain[2] != want2 || top != want2.String() {
				t.Errorf("chain IDs %v, top %s; want top %s", chain, top, want2)
			}
			// In parallel, l3 (a hardlink to a file of l1) is extracted once
			// without its lower layers, then again on them.
			if n, want := prepares.Load(), map[bool]int32{false: 3, true: 4}[parallel]; n != want {
				t.Errorf("first unpack: %d prepares, want %d", n, want)
			}
			wantKeys := []string{chain[0].String() + "/committed", chain[1].String() + "/committed", chain[2].String() + "/committed"}
			sort.Strings(wantKeys)
			if got := keys(t, sn); strings.Join(got, " ") != strings.Join(wantKeys, " ") {
				t.Errorf("snapshots %v, want %v", got, wantKeys)
			}
			mounts, err := sn.View(ctx, "view", top)
			if err != nil {
				t.Fatal(err)
			}
			testsuite.Use(t, mounts, func(dir string) {
				got := tree(t, dir)
				want := []string{"b:b", "c:c", "c2:c", "d/", "d/y:y", "d/z:z", "o/", "o/new:new", "shared:s", "shared-link:s"}
				sort.Strings(want)
				if strings.Join(got, " ") != strings.Join(want, " ") {
					t.Errorf("merged tree:\n got %v\nwant %v", got, want)
				}
			})
			if err := sn.Remove(ctx, "view"); err != nil {
				t.Fatal(err)
			}

			// Unpacking again, or another image sharing the first two
			// layers, applies only what is missing.
			prepares.Store(0)
			if _, err := Unpack(ctx, cs, sn, m, c); err != nil {
				t.Fatal(err)
			}
			l4 := store(t, cs, layerTar(t, ent{name: "four", body: "4"}), "gzip")
			m2, c2 := image(l1, l2, l4)
			top2, err := Unpack(ctx, cs, sn, m2, c2)
			if err != nil {
				t.Fatal(err)
			}
			if n := prepares.Load(); n != 1 {
				t.Errorf("re-unpack and shared-base unpack: %d prepares, want 1", n)
			}
			if info, err := sn.Stat(ctx, top2); err != nil || info.Parent != chain[1].String() {
				t.Errorf("second image top %s: %+v %v", top2, info, err)
			}
		})
	}
}

func TestUnpackFailures(t *testing.T) {
	for name, newSn := range snapshotters(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cs, err := content.NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			sn, err := newSn(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sn.Close() })
			l1 := store(t, cs, layerTar(t, ent{name: "a", body: "a"}), "gzip")
			l2 := store(t, cs, layerTar(t, ent{name: "b", body: "b"}), "gzip")
			wrong := digest.FromString("not the layer")

			m, c := image(l1, l2)
			c.RootFS.DiffIDs[1] = wrong
			_, err = Unpack(ctx, cs, sn, m, c)
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("wrong diff_id: got %v, want ErrInvalidArgument", err)
			}
			for _, s := range []string{"layer 1", wrong.String(), l2.diffID.String()} {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q does not name %q", err, s)
				}
			}
			// Layer 0 stays (it is valid); nothing of layer 1 does.
			if got := keys(t, sn); len(got) != 1 || got[0] != l1.diffID.String()+"/committed" {
				t.Errorf("snapshots after failure: %v", got)
			}

			missing := l2
			missing.desc.Digest = digest.FromString("missing blob")
			m, c = image(l1, missing)
			if _, err := Unpack(ctx, cs, sn, m, c); !errors.Is(err, errdefs.ErrNotFound) {
				t.Errorf("missing blob: got %v, want ErrNotFound", err)
			}
			if got := keys(t, sn); len(got) != 1 {
				t.Errorf("snapshots after missing blob: %v", got)
			}

			m, c = image(l1, l2)
			c.RootFS.DiffIDs = c.RootFS.DiffIDs[:1]
			if _, err := Unpack(ctx, cs, sn, m, c); !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("layer count mismatch: got %v", err)
			}
			m, c = image(l1, l2)
			if top, err := Unpack(ctx, cs, sn, m, c); err != nil || top != ChainIDs(c.RootFS.DiffIDs)[1].String() {
				t.Errorf("unpack after failures: %q %v", top, err)
			}
		})
	}
}

func TestChainIDs(t *testing.T) {
	a, b := digest.FromString("a"), digest.FromString("b")
	tests := []struct {
		in   []digest.Digest
		want []digest.Digest
	}{
		{nil, []digest.Digest{}},
		{[]digest.Digest{a}, []digest.Digest{a}},
		{[]digest.Digest{a, b}, []digest.Digest{a, digest.FromString(a.String() + " " + b.String())}},
	}
	for _, tt := range tests {
		got := ChainIDs(tt.in)
		if len(got) != len(tt.want) {
			t.Fatalf("ChainIDs(%v) = %v", tt.in, got)
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("ChainIDs(%v)[%d] = %s, want %s", tt.in, i, got[i], tt.want[i])
			}
		}
	}
}

// TestUnpackFromLeasesAndOpensFirst: UnpackFrom calls Options.Lease with
// every active snapshot key before the key exists, opens a layer's blob
// before preparing its snapshot (an Open that waits leaves nothing
// behind), and a Lease error fails the layer without a snapshot.
func TestUnpackFromLeasesAndOpensFirst(t *testing.T) {
	for name, newSn := range snapshotters(t) {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			cs, err := content.NewStore(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			sn, err := newSn(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sn.Close() })
			var ls []layer
			for _, n := range []string{"a", "b", "c"} {
				ls = append(ls, store(t, cs, layerTar(t, ent{name: n, body: n}), "gzip"))
			}
			m, c := image(ls...)

			// Layer 0's blob is held: while it is, no snapshot exists.
			g := &gatedOpener{BlobOpener: cs, watched: ls[0].desc.Digest, gated: ls[0].desc.Digest,
				opened: make(chan struct{}), release: make(chan struct{})}
			var mu sync.Mutex // layers may be prepared at once (overlay)
			var leased []string
			var leaseErrs []string
			opts := Options{Lease: func(ctx context.Context, key string) error {
				_, err := sn.Stat(ctx, key)
				mu.Lock()
				defer mu.Unlock()
				if !errors.Is(err, errdefs.ErrNotFound) {
					leaseErrs = append(leaseErrs, key)
				}
				leased = append(leased, key)
				return nil
			}}
			done := make(chan error, 1)
			go func() {
				_, err := UnpackFrom(ctx, g, sn, m, c, opts)
				done <- err
			}()
			<-g.opened
			// (Layers above it may be extracting meanwhile, on overlay.)
			for _, k := range keys(t, sn) {
				if strings.Contains(k, ls[0].diffID.Encoded()) {
					t.Errorf("snapshot %s of layer 0 while its blob is held", k)
				}
			}
			close(g.release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if len(leaseErrs) != 0 {
				t.Errorf("keys leased after they were prepared: %v", leaseErrs)
			}
			if len(leased) != len(ls) {
				t.Errorf("leased %v, want one extract-* key per layer", leased)
			}
			for _, k := range leased {
				if !strings.HasPrefix(k, "extract-") {
					t.Errorf("leased key %q, want an extract-* one", k)
				}
			}

			// Every layer unpacked: no blob is opened (nothing waits).
			top, err := UnpackFrom(ctx, refuseOpen{t}, sn, m, c, opts)
			if err != nil || top != ChainIDs(c.RootFS.DiffIDs)[2].String() {
				t.Fatalf("unpack of unpacked layers: %q, %v", top, err)
			}

			// A lease that fails: the unpack fails naming it, and leaves
			// no snapshot of its own.
			l4 := store(t, cs, layerTar(t, ent{name: "d", body: "d"}), "gzip")
			m, c = image(append(ls, l4)...)
			boom := errors.New("lease refused")
			_, err = UnpackFrom(ctx, cs, sn, m, c, Options{Lease: func(context.Context, string) error { return boom }})
			if !errors.Is(err, boom) || !strings.Contains(err.Error(), "layer 3") {
				t.Fatalf("got %v, want the lease error for layer 3", err)
			}
			for _, k := range keys(t, sn) {
				if !strings.HasSuffix(k, "/committed") {
					t.Errorf("snapshot %s left after the refused lease", k)
				}
			}
		})
	}
}

// refuseOpen fails the test if a blob is opened.
type refuseOpen struct{ t *testing.T }

func (r refuseOpen) Open(_ context.Context, d digest.Digest) (*os.File, error) {
	r.t.Errorf("blob %s opened", d)
	return nil, errdefs.ErrNotFound
}
