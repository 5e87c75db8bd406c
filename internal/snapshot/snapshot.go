package snapshot

import (
	"context"
	"time"
)

// Kind is the state of a snapshot.
type Kind int

// The kinds of snapshot. A View is a read-only active snapshot, an Active one
// is writable, a Committed one is read-only and may be the parent of others.
const (
	KindUnknown Kind = iota
	KindView
	KindActive
	KindCommitted
)

// String returns the lowercase name of the kind.
func (k Kind) String() string {
	switch k {
	case KindView:
		return "view"
	case KindActive:
		return "active"
	case KindCommitted:
		return "committed"
	default:
		return "unknown"
	}
}

// Info describes one snapshot. Parent is empty for a snapshot with no parent.
type Info struct {
	Key     string
	Parent  string
	Kind    Kind
	Created time.Time
	Labels  map[string]string
}

// Mount is one mount(2) call: Type is "overlay" or "bind", Source the device
// or directory, Options the comma-joined data ("ro", "rbind", "lowerdir=...").
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// Usage is the disk space a snapshot uses by itself (not its parents).
// Size is in bytes; Inodes counts each inode once (hardlinks included).
type Usage struct {
	Size   int64
	Inodes int64
}

// Snapshotter manages layered filesystems, in containerd's vocabulary.
//
// Lifecycle: Prepare(key, parent) makes an active, writable snapshot on top
// of the committed snapshot parent ("" for an empty one) and returns the
// mounts that show it; the caller mounts them, writes, unmounts and calls
// Commit(name, key), which turns the active snapshot key into the committed
// snapshot name (key no longer exists afterwards). View(key, parent) makes a
// read-only active snapshot of parent; it can be removed but not committed.
// Remove deletes a snapshot of any kind unless it has children
// (ErrFailedPrecondition). Stat, Mounts, Usage and Remove of a missing key
// return ErrNotFound; Prepare, View and Commit onto a taken key return
// ErrAlreadyExists. Walk visits every snapshot in no particular order.
type Snapshotter interface {
	Stat(ctx context.Context, key string) (Info, error)
	Prepare(ctx context.Context, key, parent string) ([]Mount, error)
	View(ctx context.Context, key, parent string) ([]Mount, error)
	Mounts(ctx context.Context, key string) ([]Mount, error)
	Commit(ctx context.Context, name, key string) error
	Remove(ctx context.Context, key string) error
	Walk(ctx context.Context, fn func(Info) error) error
	Usage(ctx context.Context, key string) (Usage, error)
	Close() error
}

// ParentCommitter is implemented by snapshotters whose committed snapshots
// hold only their own layer's changes, in overlayfs' form (whiteouts as 0:0
// character devices, opaque directories by xattr), so that a layer can be
// written before its parent exists: Prepare(key, "") gives an empty
// writable directory, the caller writes the layer into it in that form and
// CommitOnto(name, key, parent) commits it on top of parent, which must be
// committed by then. The overlay snapshotter implements it; the native one,
// whose snapshots are full copies of their parents, does not.
type ParentCommitter interface {
	// CommitOnto is Commit of the active snapshot key, which was prepared
	// with no parent, as name with parent as its parent. A key with a
	// parent, or a parent not committed, is ErrFailedPrecondition; a
	// missing key or parent ErrNotFound; a taken name ErrAlreadyExists.
	CommitOnto(ctx context.Context, name, key, parent string) error
}
