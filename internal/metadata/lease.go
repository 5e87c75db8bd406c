package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Lease keeps the blobs and snapshots of an unfinished operation (a pull,
// an unpack, an import) alive across garbage collections. Leases are global,
// not per namespace. Take the lease, naming what you are about to write,
// before writing it; delete it once an image or container references the
// result, or after a failure (the next collection then reclaims the rest).
type Lease struct {
	ID        string          `json:"id"`
	Blobs     []digest.Digest `json:"blobs,omitempty"`
	Snapshots []string        `json:"snapshots,omitempty"`
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
}

// AddLease creates the lease id, or adds blobs and snapshots to it if it
// exists (so a pull can extend its lease as it learns digests).
func (db *DB) AddLease(ctx context.Context, id string, blobs []digest.Digest, snapshots []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if id == "" {
		return fmt.Errorf("lease id: empty: %w", errdefs.ErrInvalidArgument)
	}
	for _, d := range blobs {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("lease %q: blob digest %q: %w: %w", id, d, errdefs.ErrInvalidArgument, err)
		}
	}
	db.gc.RLock()
	defer db.gc.RUnlock()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketV1).CreateBucketIfNotExists(bucketLeases)
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		l := Lease{ID: id, CreatedAt: now}
		if old := b.Get([]byte(id)); old != nil {
			if err := json.Unmarshal(old, &l); err != nil {
				return err
			}
		}
		for _, d := range blobs {
			if !slices.Contains(l.Blobs, d) {
				l.Blobs = append(l.Blobs, d)
			}
		}
		for _, s := range snapshots {
			if !slices.Contains(l.Snapshots, s) {
				l.Snapshots = append(l.Snapshots, s)
			}
		}
		l.UpdatedAt = now
		data, err := json.Marshal(&l)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), data)
	})
	if err != nil {
		return fmt.Errorf("add lease %q: %w", id, err)
	}
	return nil
}

// DeleteLease removes the lease id, or returns an ErrNotFound error.
func (db *DB) DeleteLease(ctx context.Context, id string) error {
	found := false
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketV1).Bucket(bucketLeases)
		if b == nil || b.Get([]byte(id)) == nil {
			return nil
		}
		found = true
		return b.Delete([]byte(id))
	})
	if err != nil {
		return fmt.Errorf("delete lease %q: %w", id, err)
	}
	if !found {
		return fmt.Errorf("lease %q: %w", id, errdefs.ErrNotFound)
	}
	return nil
}

// ListLeases returns every lease sorted by id (for a daemon that drops the
// leases of pulls a crash interrupted).
func (db *DB) ListLeases(ctx context.Context) ([]Lease, error) {
	var out []Lease
	err := db.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketV1).Bucket(bucketLeases)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var l Lease
			if err := json.Unmarshal(v, &l); err != nil {
				return err
			}
			out = append(out, l)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}
