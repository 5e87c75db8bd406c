package unpack

import (
	"context"
	"sync"
	"testing"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/snapshot/native"
)

// TestConcurrentUnpackOnce: unpacks of one image running at the same time
// extract each layer once; the others wait and reuse the committed
// snapshot.
func TestConcurrentUnpackOnce(t *testing.T) {
	ctx := context.Background()
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base, err := native.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { base.Close() })
	sn := &counting{Snapshotter: base}
	l1 := store(t, cs, layerTar(t, ent{name: "a", body: "a"}), "gzip")
	l2 := store(t, cs, layerTar(t, ent{name: "b", body: "b"}), "zstd")
	m, c := image(l1, l2)

	const n = 10
	var wg sync.WaitGroup
	tops := make([]string, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			tops[i], errs[i] = Unpack(ctx, cs, sn, m, c)
		}(i)
	}
	wg.Wait()
	for i := 0; i < n; i++ {
		if errs[i] != nil || tops[i] != tops[0] {
			t.Fatalf("unpack %d: %q, %v (first: %q)", i, tops[i], errs[i], tops[0])
		}
	}
	if got := sn.prepares.Load(); got != 2 {
		t.Errorf("%d concurrent unpacks of 2 layers prepared %d snapshots, want 2", n, got)
	}
}

func TestLayerLockGivesUpWithContext(t *testing.T) {
	unlock, err := layerLocks.lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := layerLocks.lock(ctx, "k"); err == nil {
		t.Fatal("lock with a cancelled context while held: no error")
	}
	unlock()
	unlock2, err := layerLocks.lock(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	unlock2()
	layerLocks.mu.Lock()
	left := len(layerLocks.m)
	layerLocks.mu.Unlock()
	if left != 0 {
		t.Errorf("%d lock entries left after every unlock", left)
	}
}
