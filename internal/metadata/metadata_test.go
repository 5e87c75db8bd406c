package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
)

func openDB(t *testing.T) (*DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "metadata.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, path
}

func TestSchemaVersionAndMigration(t *testing.T) {
	db, path := openDB(t)
	if v, err := db.SchemaVersion(); err != nil || v != schemaVersion {
		t.Fatalf("schema version = %d, %v; want %d", v, err, schemaVersion)
	}
	db.Close()

	// A migration to version 2 runs once on an old file.
	ran := 0
	migs := []migration{{to: 2, name: "test", fn: func(tx *bolt.Tx) error {
		ran++
		_, err := tx.Bucket(bucketV1).CreateBucketIfNotExists([]byte("migrated"))
		return err
	}}}
	bdb, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := bdb.Update(func(tx *bolt.Tx) error { return migrate(tx, migs) }); err != nil {
			t.Fatal(err)
		}
	}
	if ran != 1 {
		t.Fatalf("migration ran %d times, want 1", ran)
	}
	bdb.Close()

	// Now the file is version 2, newer than this code's 1: refused.
	if _, err := Open(path); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("open of a newer schema: %v, want ErrFailedPrecondition", err)
	}
}

func TestOpenLocked(t *testing.T) {
	_, path := openDB(t)
	// bbolt's flock is per open file description, so a second open in this
	// process waits for it like another process would.
	if _, err := Open(path); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second open: %v, want ErrUnavailable", err)
	}
}

func TestImagesCRUD(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	target := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 1}
	img := Image{Name: "docker.io/library/busybox:latest", Target: target, Labels: map[string]string{"a": "b"},
		Blobs: []digest.Digest{target.Digest}, Snapshots: []string{"sha256:chain"}}
	if err := db.PutImage(ctx, "default", img); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetImage(ctx, "default", img.Name)
	if err != nil {
		t.Fatal(err)
	}
	if got.Target.Digest != target.Digest || got.Labels["a"] != "b" || got.CreatedAt.IsZero() || len(got.Snapshots) != 1 {
		t.Fatalf("got %+v", got)
	}
	created := got.CreatedAt
	time.Sleep(time.Millisecond)
	img.Labels = nil
	if err := db.PutImage(ctx, "default", img); err != nil {
		t.Fatal(err)
	}
	got, _ = db.GetImage(ctx, "default", img.Name)
	if !got.CreatedAt.Equal(created) || got.Labels != nil {
		t.Fatalf("after replace: %+v (created %v)", got, created)
	}
	// Namespaces are separate.
	if _, err := db.GetImage(ctx, "other", img.Name); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("image in other namespace: %v", err)
	}
	db.PutImage(ctx, "default", Image{Name: "a", Target: target})
	list, err := db.ListImages(ctx, "default")
	if err != nil || len(list) != 2 || list[0].Name != "a" {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if l, err := db.ListImages(ctx, "empty"); err != nil || len(l) != 0 {
		t.Fatalf("list empty ns = %v, %v", l, err)
	}
	nss, _ := db.ListNamespaces(ctx)
	if !slices.Equal(nss, []string{"default"}) {
		t.Fatalf("namespaces = %v", nss)
	}
	if err := db.DeleteImage(ctx, "default", "a"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteImage(ctx, "default", "a"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	for _, bad := range []struct {
		ns  string
		img Image
	}{
		{"default", Image{Target: target}},
		{"default", Image{Name: "x"}},
		{"Bad NS", Image{Name: "x", Target: target}},
		{"_leases", Image{Name: "x", Target: target}},
		{"default", Image{Name: "x", Target: target, Blobs: []digest.Digest{"nope"}}},
	} {
		if err := db.PutImage(ctx, bad.ns, bad.img); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("PutImage(%q, %+v) = %v, want ErrInvalidArgument", bad.ns, bad.img, err)
		}
	}
}

func TestContainersCRUD(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	c := Container{ID: "c1", Image: "busybox", SnapshotKey: "c1-rw", Runtime: "gantry-oci", Spec: []byte(`{"ociVersion":"1.3.0"}`)}
	if err := db.PutContainer(ctx, "k8s.io", c); err != nil {
		t.Fatal(err)
	}
	got, err := db.GetContainer(ctx, "k8s.io", "c1")
	if err != nil || got.SnapshotKey != "c1-rw" || string(got.Spec) != string(c.Spec) || got.CreatedAt.IsZero() {
		t.Fatalf("got %+v, %v", got, err)
	}
	list, err := db.ListContainers(ctx, "k8s.io")
	if err != nil || len(list) != 1 {
		t.Fatalf("list = %+v, %v", list, err)
	}
	if err := db.DeleteContainer(ctx, "k8s.io", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.GetContainer(ctx, "k8s.io", "c1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
	if err := db.PutContainer(ctx, "k8s.io", Container{}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("empty id: %v", err)
	}
}

func TestLeases(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	d1, d2 := digest.FromString("1"), digest.FromString("2")
	if err := db.AddLease(ctx, "pull-1", []digest.Digest{d1}, nil); err != nil {
		t.Fatal(err)
	}
	if err := db.AddLease(ctx, "pull-1", []digest.Digest{d1, d2}, []string{"s"}); err != nil {
		t.Fatal(err)
	}
	ls, err := db.ListLeases(ctx)
	if err != nil || len(ls) != 1 || !slices.Equal(ls[0].Blobs, []digest.Digest{d1, d2}) || !slices.Equal(ls[0].Snapshots, []string{"s"}) {
		t.Fatalf("leases = %+v, %v", ls, err)
	}
	if err := db.DeleteLease(ctx, "pull-1"); err != nil {
		t.Fatal(err)
	}
	if err := db.DeleteLease(ctx, "pull-1"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
	// Leases are not a namespace.
	if nss, _ := db.ListNamespaces(ctx); len(nss) != 0 {
		t.Fatalf("namespaces = %v", nss)
	}
}

// fakeSnapshotter is an in-memory snapshot.Snapshotter for GC tests: it
// keeps the parent links, refuses to remove a snapshot with children and
// reports a fixed usage.
type fakeSnapshotter struct {
	mu    sync.Mutex
	snaps map[string]snapshot.Info
}

func newFakeSnapshotter() *fakeSnapshotter {
	return &fakeSnapshotter{snaps: map[string]snapshot.Info{}}
}

func (f *fakeSnapshotter) add(t *testing.T, key, parent string, kind snapshot.Kind) {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snaps[parent]; parent != "" && !ok {
		t.Fatalf("fake: parent %q of %q missing", parent, key)
	}
	f.snaps[key] = snapshot.Info{Key: key, Parent: parent, Kind: kind}
}

func (f *fakeSnapshotter) keys() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.snaps {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (f *fakeSnapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.snaps[key]
	if !ok {
		return snapshot.Info{}, errdefs.ErrNotFound
	}
	return i, nil
}
func (f *fakeSnapshotter) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	return nil, errdefs.ErrNotImplemented
}
func (f *fakeSnapshotter) View(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	return nil, errdefs.ErrNotImplemented
}
func (f *fakeSnapshotter) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	return nil, errdefs.ErrNotImplemented
}
func (f *fakeSnapshotter) Commit(ctx context.Context, name, key string) error {
	return errdefs.ErrNotImplemented
}
func (f *fakeSnapshotter) Remove(ctx context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.snaps[key]; !ok {
		return errdefs.ErrNotFound
	}
	for _, i := range f.snaps {
		if i.Parent == key {
			return errdefs.ErrFailedPrecondition
		}
	}
	delete(f.snaps, key)
	return nil
}
func (f *fakeSnapshotter) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	f.mu.Lock()
	infos := make([]snapshot.Info, 0, len(f.snaps))
	for _, i := range f.snaps {
		infos = append(infos, i)
	}
	f.mu.Unlock()
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}
func (f *fakeSnapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	return snapshot.Usage{Size: 1000, Inodes: 1}, nil
}
func (f *fakeSnapshotter) Close() error { return nil }

type gcEnv struct {
	db *DB
	cs *content.Store
	sn *fakeSnapshotter
}

func newGCEnv(t *testing.T) gcEnv {
	db, _ := openDB(t)
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return gcEnv{db: db, cs: cs, sn: newFakeSnapshotter()}
}

func (e gcEnv) put(t *testing.T, b []byte, mediaType string) ocispec.Descriptor {
	t.Helper()
	ctx := context.Background()
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(b), Size: int64(len(b))}
	w, err := e.cs.Writer(ctx, "t-"+string(d.Digest), d)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return d
}

// image stores a config, layers and a manifest in content and returns the
// manifest descriptor and all digests.
func (e gcEnv) image(t *testing.T, name string, layers ...string) (ocispec.Descriptor, []digest.Digest) {
	t.Helper()
	cfg := e.put(t, []byte(`{"config":"`+name+`"}`), ocispec.MediaTypeImageConfig)
	m := ocispec.Manifest{Config: cfg, MediaType: ocispec.MediaTypeImageManifest}
	all := []digest.Digest{cfg.Digest}
	for _, l := range layers {
		ld := e.put(t, []byte("layer "+l), ocispec.MediaTypeImageLayerGzip)
		m.Layers = append(m.Layers, ld)
		all = append(all, ld.Digest)
	}
	mb, _ := json.Marshal(m)
	md := e.put(t, mb, ocispec.MediaTypeImageManifest)
	return md, append(all, md.Digest)
}

func (e gcEnv) has(t *testing.T, d digest.Digest) bool {
	t.Helper()
	_, err := e.cs.Info(context.Background(), d)
	if err != nil && !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

func TestGCReferencedSurviveUnreferencedGo(t *testing.T) {
	ctx := context.Background()
	e := newGCEnv(t)
	md, blobs := e.image(t, "a", "l1", "l2")
	orphan := e.put(t, []byte("orphan"), "")
	e.sn.add(t, "chain1", "", snapshot.KindCommitted)
	e.sn.add(t, "chain2", "chain1", snapshot.KindCommitted)
	e.sn.add(t, "lonely1", "", snapshot.KindCommitted)
	e.sn.add(t, "lonely2", "lonely1", snapshot.KindCommitted)
	e.sn.add(t, "lonely3", "lonely2", snapshot.KindActive)
	e.sn.add(t, "ctr-rw", "chain2", snapshot.KindActive)
	if err := e.db.PutImage(ctx, "default", Image{Name: "a", Target: md, Blobs: blobs, Snapshots: []string{"chain1", "chain2"}}); err != nil {
		t.Fatal(err)
	}

	rep, err := e.db.GarbageCollect(ctx, e.cs, e.sn, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range blobs {
		if !e.has(t, d) {
			t.Errorf("referenced blob %s removed", d)
		}
	}
	if e.has(t, orphan.Digest) {
		t.Error("orphan blob kept")
	}
	if !slices.Equal(rep.Blobs, []digest.Digest{orphan.Digest}) {
		t.Errorf("report blobs = %v", rep.Blobs)
	}
	// Children before parents, and the unreferenced container snapshot goes too.
	if got := e.sn.keys(); !slices.Equal(got, []string{"chain1", "chain2"}) {
		t.Errorf("snapshots left = %v", got)
	}
	idx := func(k string) int { return slices.Index(rep.Snapshots, k) }
	if len(rep.Snapshots) != 4 || idx("ctr-rw") < 0 || idx("lonely3") > idx("lonely2") || idx("lonely2") > idx("lonely1") {
		t.Errorf("report snapshots = %v (want children first)", rep.Snapshots)
	}
	if want := orphan.Size + 4*1000; rep.BytesFreed != want {
		t.Errorf("bytes freed = %d, want %d", rep.BytesFreed, want)
	}
}

func TestGCFollowsManifestAndContainerParents(t *testing.T) {
	ctx := context.Background()
	e := newGCEnv(t)
	// The image record lists only its target; GC finds config and layers
	// through the manifest in the store.
	md, blobs := e.image(t, "a", "l1")
	e.db.PutImage(ctx, "default", Image{Name: "a", Target: md})
	e.sn.add(t, "c1", "", snapshot.KindCommitted)
	e.sn.add(t, "c2", "c1", snapshot.KindCommitted)
	e.sn.add(t, "rw", "c2", snapshot.KindActive)
	e.db.PutContainer(ctx, "other", Container{ID: "x", SnapshotKey: "rw"})
	rep, err := e.db.GarbageCollect(ctx, e.cs, e.sn, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range blobs {
		if !e.has(t, d) {
			t.Errorf("blob %s reached through the manifest removed", d)
		}
	}
	if got := e.sn.keys(); !slices.Equal(got, []string{"c1", "c2", "rw"}) {
		t.Errorf("snapshots left = %v, want the container's chain", got)
	}
	if len(rep.Snapshots)+len(rep.Blobs) != 0 {
		t.Errorf("removed %+v", rep)
	}
	// Once the container is gone, its snapshot chain goes.
	e.db.DeleteContainer(ctx, "other", "x")
	rep, err = e.db.GarbageCollect(ctx, e.cs, e.sn, true)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.sn.keys(); len(got) != 0 {
		t.Errorf("snapshots left = %v", got)
	}
	if !slices.Equal(rep.Snapshots, []string{"rw", "c2", "c1"}) {
		t.Errorf("removed %v, want rw c2 c1", rep.Snapshots)
	}
}

func TestGCLeaseProtectsPull(t *testing.T) {
	ctx := context.Background()
	e := newGCEnv(t)
	layer := []byte("a layer being pulled")
	ld := ocispec.Descriptor{Digest: digest.FromBytes(layer), Size: int64(len(layer))}
	done := e.put(t, []byte("manifest already fetched"), "")
	if err := e.db.AddLease(ctx, "pull-1", []digest.Digest{done.Digest, ld.Digest}, []string{"extract-1"}); err != nil {
		t.Fatal(err)
	}
	e.sn.add(t, "extract-1", "", snapshot.KindActive)
	// Half the layer is in an ingest.
	w, _ := e.cs.Writer(ctx, "fetch-layer", ld)
	w.Write(layer[:5])
	w.Close()

	rep, err := e.db.GarbageCollect(ctx, e.cs, e.sn, false)
	if err != nil {
		t.Fatal(err)
	}
	if !e.has(t, done.Digest) || len(e.sn.keys()) != 1 {
		t.Fatalf("lease did not protect: %+v", rep)
	}
	if ing, _ := e.cs.Ingests(ctx); len(ing) != 1 {
		t.Fatalf("a fresh ingest was removed: %+v", rep)
	}
	// A Writer holding an ingest is left alone even with all=true.
	w, _ = e.cs.Writer(ctx, "fetch-layer", ld)
	if _, err := e.db.GarbageCollect(ctx, e.cs, e.sn, true); err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 5 {
		t.Fatal("held ingest changed")
	}
	w.Close()
	if ing, _ := e.cs.Ingests(ctx); len(ing) != 1 {
		t.Fatal("held ingest removed")
	}

	// The pull failed: the lease goes, and the next GC reclaims everything.
	e.db.DeleteLease(ctx, "pull-1")
	rep, err = e.db.GarbageCollect(ctx, e.cs, e.sn, true)
	if err != nil {
		t.Fatal(err)
	}
	if e.has(t, done.Digest) || len(e.sn.keys()) != 0 {
		t.Fatalf("after lease delete: %+v", rep)
	}
	if ing, _ := e.cs.Ingests(ctx); len(ing) != 0 || !slices.Equal(rep.Ingests, []string{"fetch-layer"}) {
		t.Fatalf("ingests = %+v, report %+v", ing, rep)
	}
	if want := done.Size + 5 + 1000; rep.BytesFreed != want {
		t.Fatalf("bytes freed %d, want %d", rep.BytesFreed, want)
	}
}

func TestGCSharedLayers(t *testing.T) {
	ctx := context.Background()
	e := newGCEnv(t)
	mdA, blobsA := e.image(t, "a", "base", "onlyA")
	mdB, blobsB := e.image(t, "b", "base", "onlyB")
	shared := digest.FromBytes([]byte("layer base"))
	if !slices.Contains(blobsA, shared) || !slices.Contains(blobsB, shared) {
		t.Fatal("test setup: layer not shared")
	}
	e.sn.add(t, "base", "", snapshot.KindCommitted)
	e.sn.add(t, "a2", "base", snapshot.KindCommitted)
	e.sn.add(t, "b2", "base", snapshot.KindCommitted)
	e.db.PutImage(ctx, "default", Image{Name: "a", Target: mdA, Blobs: blobsA, Snapshots: []string{"base", "a2"}})
	e.db.PutImage(ctx, "default", Image{Name: "b", Target: mdB, Blobs: blobsB, Snapshots: []string{"base", "b2"}})

	e.db.DeleteImage(ctx, "default", "a")
	if _, err := e.db.GarbageCollect(ctx, e.cs, e.sn, false); err != nil {
		t.Fatal(err)
	}
	if !e.has(t, shared) {
		t.Fatal("shared layer removed while b still uses it")
	}
	for _, d := range blobsB {
		if !e.has(t, d) {
			t.Errorf("b's blob %s removed", d)
		}
	}
	for _, d := range blobsA {
		if d != shared && e.has(t, d) {
			t.Errorf("a's own blob %s kept", d)
		}
	}
	if got := e.sn.keys(); !slices.Equal(got, []string{"b2", "base"}) {
		t.Errorf("snapshots = %v", got)
	}

	e.db.DeleteImage(ctx, "default", "b")
	if _, err := e.db.GarbageCollect(ctx, e.cs, e.sn, false); err != nil {
		t.Fatal(err)
	}
	if e.has(t, shared) || len(e.sn.keys()) != 0 {
		t.Fatalf("shared layer kept after both images went; snapshots %v", e.sn.keys())
	}
	n := 0
	e.cs.Walk(ctx, func(content.Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("%d blobs left", n)
	}
}
