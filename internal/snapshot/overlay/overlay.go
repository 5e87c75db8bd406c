package overlay

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/storage"
)

// Snapshotter is the overlayfs snapshotter; see the package comment.
type Snapshotter struct {
	root string
	ms   *storage.Store
}

var (
	_ snapshot.Snapshotter     = (*Snapshotter)(nil)
	_ snapshot.ParentCommitter = (*Snapshotter)(nil)
)

// New opens (creating if needed) an overlay snapshotter in root. It fails if
// overlayfs cannot be mounted there (no kernel support, no privilege, or a
// root on a filesystem overlayfs refuses as upper layer).
func New(root string) (snapshot.Snapshotter, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("overlay snapshotter root %q: %w", root, err)
	}
	for _, d := range []string{root, filepath.Join(root, "snapshots"), filepath.Join(root, "removing")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create overlay snapshotter directory: %w", err)
		}
	}
	if err := checkOverlay(root); err != nil {
		return nil, fmt.Errorf("overlayfs is unusable in %q: %w: %w", root, errdefs.ErrNotImplemented, err)
	}
	ms, err := storage.Open(filepath.Join(root, "metadata.db"))
	if err != nil {
		return nil, err
	}
	s := &Snapshotter{root: root, ms: ms}
	s.cleanup(context.Background())
	return s, nil
}

// checkOverlay mounts a two-layer overlay with an upper directory in a
// scratch directory under root and unmounts it again.
func checkOverlay(root string) error {
	dir, err := os.MkdirTemp(root, "check-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"l1", "l2", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return err
		}
	}
	data := fmt.Sprintf("lowerdir=%s:%s,upperdir=%s,workdir=%s",
		filepath.Join(dir, "l2"), filepath.Join(dir, "l1"), filepath.Join(dir, "u"), filepath.Join(dir, "w"))
	m := filepath.Join(dir, "m")
	if err := unix.Mount("overlay", m, "overlay", 0, data); err != nil {
		return fmt.Errorf("test mount: %w", err)
	}
	if err := unix.Unmount(m, 0); err != nil {
		return fmt.Errorf("unmount test mount: %w", err)
	}
	return nil
}

// cleanup removes directories a crash left behind: those moved aside by
// Remove, and snapshot directories with no record.
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

// Prepare creates the active snapshot key on parent.
func (s *Snapshotter) Prepare(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	return s.create(ctx, snapshot.KindActive, key, parent)
}

// View creates the read-only snapshot key on parent.
func (s *Snapshotter) View(ctx context.Context, key, parent string) ([]snapshot.Mount, error) {
	return s.create(ctx, snapshot.KindView, key, parent)
}

func (s *Snapshotter) create(ctx context.Context, kind snapshot.Kind, key, parent string) ([]snapshot.Mount, error) {
	sn, ids, err := s.ms.Create(ctx, key, parent, kind, nil, func(sn storage.Snapshot, _ []string) error {
		d := s.dir(sn.ID)
		// A leftover directory with this id cannot belong to a record.
		_ = os.RemoveAll(d)
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("create snapshot directory: %w", err)
		}
		dirs := []string{"fs"}
		if kind == snapshot.KindActive {
			dirs = append(dirs, "work")
		}
		for _, sub := range dirs {
			if err := os.Mkdir(filepath.Join(d, sub), 0o755); err != nil {
				_ = os.RemoveAll(d)
				return fmt.Errorf("create snapshot directory: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s snapshot %q on %q: %w", verb(kind), key, parent, err)
	}
	return s.mounts(sn, ids), nil
}

func verb(k snapshot.Kind) string {
	if k == snapshot.KindView {
		return "view"
	}
	return "prepare"
}

// Mounts returns the mounts of the snapshot key. For a committed snapshot
// they show it read-only.
func (s *Snapshotter) Mounts(ctx context.Context, key string) ([]snapshot.Mount, error) {
	sn, ids, err := s.ms.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	return s.mounts(sn, ids), nil
}

func (s *Snapshotter) mounts(sn storage.Snapshot, parentIDs []string) []snapshot.Mount {
	var lowers []string
	if sn.Kind == snapshot.KindCommitted {
		lowers = append(lowers, s.fs(sn.ID))
	}
	for _, id := range parentIDs {
		lowers = append(lowers, s.fs(id))
	}
	if sn.Kind == snapshot.KindActive {
		if len(lowers) == 0 {
			return []snapshot.Mount{{Type: "bind", Source: s.fs(sn.ID), Options: []string{"rw", "rbind"}}}
		}
		return []snapshot.Mount{{
			Type:   "overlay",
			Source: "overlay",
			Options: []string{
				"workdir=" + filepath.Join(s.dir(sn.ID), "work"),
				"upperdir=" + s.fs(sn.ID),
				"lowerdir=" + strings.Join(lowers, ":"),
			},
		}}
	}
	switch len(lowers) {
	case 0:
		return []snapshot.Mount{{Type: "bind", Source: s.fs(sn.ID), Options: []string{"ro", "rbind"}}}
	case 1:
		return []snapshot.Mount{{Type: "bind", Source: lowers[0], Options: []string{"ro", "rbind"}}}
	}
	return []snapshot.Mount{{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(lowers, ":")}}}
}

// Commit turns the active snapshot key into the committed snapshot name.
// Only the record changes; the directory is named by id and stays. The
// work directory is emptied (overlayfs leaves a work/work directory behind).
func (s *Snapshotter) Commit(ctx context.Context, name, key string) error {
	sn, _, err := s.ms.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("commit snapshot %q as %q: %w", key, name, err)
	}
	if err := s.ms.Commit(ctx, name, key); err != nil {
		return err
	}
	_ = os.RemoveAll(filepath.Join(s.dir(sn.ID), "work"))
	return nil
}

// CommitOnto commits the active snapshot key, prepared with no parent and
// written in overlay form, as name on top of the committed snapshot parent
// (see snapshot.ParentCommitter). The layer's directory stays as it is: a
// snapshot's directory holds only its own layer.
func (s *Snapshotter) CommitOnto(ctx context.Context, name, key, parent string) error {
	sn, _, err := s.ms.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("commit snapshot %q as %q onto %q: %w", key, name, parent, err)
	}
	if err := s.ms.CommitOnto(ctx, name, key, parent); err != nil {
		return err
	}
	_ = os.RemoveAll(filepath.Join(s.dir(sn.ID), "work"))
	return nil
}

// Remove deletes the snapshot key; ErrFailedPrecondition if it has children.
// The directory is moved aside in the same transaction and deleted after.
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

// Usage measures the snapshot's own directory (its layer, or the upper
// directory of an active snapshot).
func (s *Snapshotter) Usage(ctx context.Context, key string) (snapshot.Usage, error) {
	sn, _, err := s.ms.Get(ctx, key)
	if err != nil {
		return snapshot.Usage{}, err
	}
	return storage.DiskUsage(ctx, s.fs(sn.ID))
}

// Close closes the metadata file.
func (s *Snapshotter) Close() error { return s.ms.Close() }
