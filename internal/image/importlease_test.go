package image

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/test/registry"
)

// leaseCheckingSnapshotter records, at every Prepare of an extract-*
// snapshot, whether a lease already held its key.
type leaseCheckingSnapshotter struct {
	snapshot.Snapshotter
	db *metadata.DB

	mu       sync.Mutex
	prepared []string
	unleased []string
}

func (l *leaseCheckingSnapshotter) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	if strings.HasPrefix(key, "extract-") {
		leases, err := l.db.ListLeases(ctx)
		if err != nil {
			return nil, err
		}
		held := slices.ContainsFunc(leases, func(ls metadata.Lease) bool { return slices.Contains(ls.Snapshots, key) })
		l.mu.Lock()
		l.prepared = append(l.prepared, key)
		if !held {
			l.unleased = append(l.unleased, key)
		}
		l.mu.Unlock()
	}
	return l.Snapshotter.Prepare(ctx, key, parent)
}

// TestImportLeasesExtractSnapshots: an import, like a pull, leases each
// active snapshot it unpacks into before preparing it, so that a garbage
// collection running meanwhile cannot remove it.
func TestImportLeasesExtractSnapshots(t *testing.T) {
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
	check := &leaseCheckingSnapshotter{Snapshotter: dst.Snapshotter, db: dst.DB}
	dst.Snapshotter = check
	if _, err := dst.Import(ctx, "default", bytes.NewReader(buf.Bytes()), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(check.prepared) == 0 {
		t.Fatal("the import prepared no extract snapshot")
	}
	if len(check.unleased) > 0 {
		t.Errorf("extract snapshots prepared without a lease: %v (of %v)", check.unleased, check.prepared)
	}
	leases, err := dst.DB.ListLeases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(leases) != 0 {
		t.Errorf("leases left after the import: %v", fmt.Sprint(leases))
	}
}
