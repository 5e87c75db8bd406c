package storage

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
)

var (
	bucketSnapshots = []byte("snapshots")
	bucketMeta      = []byte("meta")
	keyVersion      = []byte("version")
)

const schemaVersion = "1"

// Snapshot is the record of one snapshot. ID is a short decimal string,
// unique for the life of the store, that the snapshotter uses to name the
// snapshot's directory.
type Snapshot struct {
	ID      string            `json:"id"`
	Key     string            `json:"key"`
	Parent  string            `json:"parent,omitempty"`
	Kind    snapshot.Kind     `json:"kind"`
	Created time.Time         `json:"created"`
	Labels  map[string]string `json:"labels,omitempty"`
}

// Info returns the public view of the record.
func (s Snapshot) Info() snapshot.Info {
	return snapshot.Info{Key: s.Key, Parent: s.Parent, Kind: s.Kind, Created: s.Created, Labels: s.Labels}
}

// Store is the metadata file of one snapshotter. It is safe for concurrent
// use; writes are serialised by bbolt.
type Store struct {
	db *bolt.DB
}

// Open opens (creating if needed) the metadata file at path.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open snapshot metadata %q: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		if v := meta.Get(keyVersion); v != nil && string(v) != schemaVersion {
			return fmt.Errorf("schema version %q, want %q: %w", v, schemaVersion, errdefs.ErrFailedPrecondition)
		}
		if err := meta.Put(keyVersion, []byte(schemaVersion)); err != nil {
			return err
		}
		_, err = tx.CreateBucketIfNotExists(bucketSnapshots)
		return err
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("initialise snapshot metadata %q: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close closes the metadata file.
func (s *Store) Close() error { return s.db.Close() }

func get(b *bolt.Bucket, key string) (Snapshot, bool, error) {
	v := b.Get([]byte(key))
	if v == nil {
		return Snapshot{}, false, nil
	}
	var sn Snapshot
	if err := json.Unmarshal(v, &sn); err != nil {
		return Snapshot{}, false, fmt.Errorf("decode snapshot record %q: %w", key, err)
	}
	return sn, true, nil
}

func put(b *bolt.Bucket, sn Snapshot) error {
	v, err := json.Marshal(sn)
	if err != nil {
		return err
	}
	return b.Put([]byte(sn.Key), v)
}

// chain returns the ids of key's parents, nearest first.
func chain(b *bolt.Bucket, parent string) ([]string, error) {
	var ids []string
	for parent != "" {
		p, ok, err := get(b, parent)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("parent snapshot %q: %w", parent, errdefs.ErrNotFound)
		}
		ids = append(ids, p.ID)
		parent = p.Parent
	}
	return ids, nil
}

// Create records a new snapshot key of kind on the committed snapshot parent
// ("" for none) and returns it with the ids of its parent chain, nearest
// first. fn, if not nil, runs inside the transaction (to create the
// snapshot's directories): if it fails, nothing is recorded.
func (s *Store) Create(ctx context.Context, key, parent string, kind snapshot.Kind, labels map[string]string, fn func(sn Snapshot, parentIDs []string) error) (Snapshot, []string, error) {
	if key == "" {
		return Snapshot{}, nil, fmt.Errorf("create snapshot: empty key: %w", errdefs.ErrInvalidArgument)
	}
	var sn Snapshot
	var ids []string
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := tx.Bucket(bucketSnapshots)
		if _, ok, err := get(b, key); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		if parent != "" {
			p, ok, err := get(b, parent)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("parent snapshot %q: %w", parent, errdefs.ErrNotFound)
			}
			if p.Kind != snapshot.KindCommitted {
				return fmt.Errorf("parent snapshot %q is %s, not committed: %w", parent, p.Kind, errdefs.ErrFailedPrecondition)
			}
		}
		var err error
		if ids, err = chain(b, parent); err != nil {
			return err
		}
		seq, err := tx.Bucket(bucketMeta).NextSequence()
		if err != nil {
			return err
		}
		sn = Snapshot{ID: strconv.FormatUint(seq, 10), Key: key, Parent: parent, Kind: kind, Created: time.Now().UTC(), Labels: labels}
		if fn != nil {
			if err := fn(sn, ids); err != nil {
				return err
			}
		}
		return put(b, sn)
	})
	if err != nil {
		return Snapshot{}, nil, err
	}
	return sn, ids, nil
}

// Get returns the record of key and the ids of its parent chain, nearest
// first; ErrNotFound if there is none.
func (s *Store) Get(ctx context.Context, key string) (Snapshot, []string, error) {
	var sn Snapshot
	var ids []string
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		var ok bool
		var err error
		if sn, ok, err = get(b, key); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
		}
		ids, err = chain(b, sn.Parent)
		return err
	})
	return sn, ids, err
}

// Commit renames the active snapshot key to name and marks it committed, in
// one transaction. The directory (named by id) does not move.
func (s *Store) Commit(ctx context.Context, name, key string) error {
	return s.commit(ctx, name, key, "", false)
}

// CommitOnto is Commit of the active snapshot key, which has no parent, that
// also makes the committed snapshot parent its parent.
func (s *Store) CommitOnto(ctx context.Context, name, key, parent string) error {
	if parent == "" {
		return fmt.Errorf("commit snapshot %q onto a parent: empty parent: %w", key, errdefs.ErrInvalidArgument)
	}
	return s.commit(ctx, name, key, parent, true)
}

func (s *Store) commit(ctx context.Context, name, key, parent string, setParent bool) error {
	if name == "" {
		return fmt.Errorf("commit snapshot %q: empty name: %w", key, errdefs.ErrInvalidArgument)
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := tx.Bucket(bucketSnapshots)
		sn, ok, err := get(b, key)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("commit snapshot %q: %w", key, errdefs.ErrNotFound)
		}
		if sn.Kind != snapshot.KindActive {
			return fmt.Errorf("commit snapshot %q: it is %s, not active: %w", key, sn.Kind, errdefs.ErrFailedPrecondition)
		}
		if _, ok, err := get(b, name); err != nil {
			return err
		} else if ok {
			return fmt.Errorf("commit snapshot %q as %q: %w", key, name, errdefs.ErrAlreadyExists)
		}
		if setParent {
			if sn.Parent != "" {
				return fmt.Errorf("commit snapshot %q onto %q: it already has the parent %q: %w", key, parent, sn.Parent, errdefs.ErrFailedPrecondition)
			}
			p, ok, err := get(b, parent)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("commit snapshot %q onto %q: parent: %w", key, parent, errdefs.ErrNotFound)
			}
			if p.Kind != snapshot.KindCommitted {
				return fmt.Errorf("commit snapshot %q onto %q: the parent is %s, not committed: %w", key, parent, p.Kind, errdefs.ErrFailedPrecondition)
			}
			sn.Parent = parent
		}
		if err := b.Delete([]byte(key)); err != nil {
			return err
		}
		sn.Key = name
		sn.Kind = snapshot.KindCommitted
		return put(b, sn)
	})
}

// Remove deletes the record of key unless another snapshot has it as parent
// (ErrFailedPrecondition). fn, if not nil, runs inside the transaction (to
// move the directory aside): if it fails, the record stays.
func (s *Store) Remove(ctx context.Context, key string, fn func(sn Snapshot) error) (Snapshot, error) {
	var sn Snapshot
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		var ok bool
		var err error
		if sn, ok, err = get(b, key); err != nil {
			return err
		} else if !ok {
			return fmt.Errorf("remove snapshot %q: %w", key, errdefs.ErrNotFound)
		}
		var children []string
		err = b.ForEach(func(k, v []byte) error {
			var c Snapshot
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("decode snapshot record %q: %w", k, err)
			}
			if c.Parent == key {
				children = append(children, c.Key)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if len(children) > 0 {
			return fmt.Errorf("remove snapshot %q: it is the parent of %q: %w", key, children, errdefs.ErrFailedPrecondition)
		}
		if fn != nil {
			if err := fn(sn); err != nil {
				return err
			}
		}
		return b.Delete([]byte(key))
	})
	return sn, err
}

// Walk calls fn for every record, in key order. fn must not call back into
// the store.
func (s *Store) Walk(ctx context.Context, fn func(Snapshot) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			var sn Snapshot
			if err := json.Unmarshal(v, &sn); err != nil {
				return fmt.Errorf("decode snapshot record %q: %w", k, err)
			}
			return fn(sn)
		})
	})
}

// IDs returns the set of every id in use (for cleaning orphan directories).
func (s *Store) IDs(ctx context.Context) (map[string]bool, error) {
	ids := map[string]bool{}
	err := s.Walk(ctx, func(sn Snapshot) error { ids[sn.ID] = true; return nil })
	return ids, err
}
