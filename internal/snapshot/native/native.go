package native

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/storage"
)

// Snapshotter is the native (copying) snapshotter; see the package comment.
type Snapshotter struct {
	root string
	ms   *storage.Store
}

var _ snapshot.Snapshotter = (*Snapshotter)(nil)

// New opens (creating if needed) a native snapshotter in root.
func New(root string) (snapshot.Snapshotter, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("native snapshotter root %q: %w", root, err)
	}
	for _, d := range []string{root, filepath.Join(root, "snapshots"), filepath.Join(root, "removing")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create native snapshotter directory: %w", err)
		}
	}
	ms, err := storage.Open(filepath.Join(root, "metadata.db"))
	if err != nil {
		return nil, err
	}
	s := &Snapshotter{root: root, ms: ms}
	s.cleanup(context.Background())
	return s, nil
}

// cleanup removes directories a crash left behind.
func (s *Snapshotter) cleanup(ctx context.Context) {
	removing := filepath.Join(s.root, "removing")
	if ents, err := os.ReadDir(removing); err == nil {
		for _, e := range ents {
			_ = os.RemoveAll(filepath.Join(removing, e.Name()))
		}
	}
	ids, err := s.ms.IDs(ctx)
	if err != nil {
		return
	}
	ents, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return
	}
	for _, e := range ents {
		if !ids[e.Name()] {
			_ = os.RemoveAll(filepath.Join(s.root, "snapshots", e.Name()))
		}
	}
}

func (s *Snapshotter) dir(id string) string { return filepath.Join(s.root, "snapshots", id) }
func (s *Snapshotter) fs(id string) string  { return filepath.Join(s.root, "snapshots", id, "fs") }

// Stat returns the snapshot's information.
func (s *Snapshotter) Stat(ctx context.Context, key string) (snapshot.Info, error) {
	sn, _, err := s.ms.Get(ctx, key)
	if err != nil {
		return snapshot.Info{}, err
	}
	return sn.Info(), nil
}

// Prepare creates the active snapshot key as a copy of parent.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent)
}

// View creates the read-only snapshot key on parent (no copy is made).
func (s *Snapshotter) View(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent)
}

func (s *Snapshotter) create(ctx context.Context, kind snapshot.Kind, key, parent string) ([]snapshot.Mount, error) {
	verb := "prepare"
	if kind == snapshot.KindView {
		verb = "view"
	}
	sn, ids, err := s.ms.Create(ctx, key, parent, kind, nil, func(sn storage.Snapshot, _ []string) error {
		d := s.dir(sn.ID)
		_ = os.RemoveAll(d)
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("create snapshot directory: %w", err)
		}
		if err := os.Mkdir(filepath.Join(d, "fs"), 0o755); err != nil {
			_ = os.RemoveAll(d)
			return fmt.Errorf("create snapshot directory: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s snapshot %q on %q: %w", verb, key, parent, err)
	}
	// The copy runs outside the metadata transaction so that a large
	// parent does not block every other snapshot operation; the record
	// already protects the parent from removal.
	if kind == snapshot.KindActive && len(ids) > 0 {
		if err := copyTree(ctx, s.fs(ids[0]), s.fs(sn.ID)); err != nil {
			_ = s.Remove(context.WithoutCancel(ctx), key)
			return nil, fmt.Errorf("prepare snapshot %q: copy parent %q: %w", key, parent, err)
		}
	}
	return s.mounts(sn, ids), nil
}

// Mounts returns the mounts of the snapshot key.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	sn, ids, err := s.ms.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.mounts(sn, ids), nil
}

func (s *Snapshotter) mounts(sn storage.Snapshot, parentIDs []string) []snapshot.Mount {
	switch {
	case sn.Kind == snapshot.KindActive:
		return []snapshot.Mount{{Type: "bind", Source: s.fs(sn.ID), Options: []string{"rw", "rbind"}}}
	case sn.Kind == snapshot.KindView && len(parentIDs) > 0:
		return []snapshot.Mount{{Type: "bind", Source: s.fs(parentIDs[0]), Options: []string{"ro", "rbind"}}}
	default:
		return []snapshot.Mount{{Type: "bind", Source: s.fs(sn.ID), Options: []string{"ro", "rbind"}}}
	}
}

// Commit turns the active snapshot key into the committed snapshot name.
func (s *Snapshotter) Commit(ctx context.Context, name, key string) error {
	return s.ms.Commit(ctx, name, key)
}

// Remove deletes the snapshot key; ErrFailedPrecondition if it has children.
func (s *Snapshotter) Remove(ctx context.Context, key string) error {
	var moved string
	_, err := s.ms.Remove(ctx, key, func(sn storage.Snapshot) error {
		moved = filepath.Join(s.root, "removing", sn.ID)
		if err := os.Rename(s.dir(sn.ID), moved); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				moved = ""
				return nil
			}
			return fmt.Errorf("move snapshot directory aside: %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if moved != "" {
		if err := os.RemoveAll(moved); err != nil {
			return fmt.Errorf("remove snapshot %q directory: %w", key, err)
		}
	}
	return nil
}

// Walk calls fn for every snapshot.
func (s *Snapshotter) Walk(ctx context.Context, fn func(snapshot.Info) error) error {
	var infos []snapshot.Info
	if err := s.ms.Walk(ctx, func(sn storage.Snapshot) error { infos = append(infos, sn.Info()); return nil }); err != nil {
		return err
	}
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

// Usage measures the snapshot's own tree (for native, the whole copy).
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	sn, _, err := s.ms.Get(ctx, key)
	if err != nil {
		return snapshot.Usage{}, err
	}
	return storage.DiskUsage(ctx, s.fs(sn.ID))
}

// Close closes the metadata file.
func (s *Snapshotter) Close() error { return s.ms.Close() }
