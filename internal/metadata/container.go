package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Container is a container's record: the image it came from, its writable
// snapshot (whose parent chain GC keeps), the runtime that runs it and its
// OCI runtime spec as JSON.
type Container struct {
	ID string `json:"id"`
	// Image is the name of the image the container was created from, and
	// ImageTarget that image's target digest then: while the container
	// exists, DeleteUnusedImage refuses to remove that name, or the last
	// name of that target. Records written before ImageTarget have only
	// the name.
	Image       string            `json:"image,omitempty"`
	ImageTarget digest.Digest     `json:"imageTarget,omitempty"`
	SnapshotKey string            `json:"snapshotKey,omitempty"`
	Runtime     string            `json:"runtime,omitempty"`
	Spec        []byte            `json:"spec,omitempty"`
	Labels      map[string]string `json:"labels,omitempty"`
	CreatedAt   time.Time         `json:"createdAt"`
}

// PutContainer creates or replaces the container c.ID in namespace ns.
// CreatedAt is set to now if zero and kept on replace.
func (db *DB) PutContainer(ctx context.Context, ns string, c Container) error {
	if c.ID == "" {
		return fmt.Errorf("container id: empty: %w", errdefs.ErrInvalidArgument)
	}
	err := db.putRecord(ctx, ns, bucketContainers, c.ID, &c, func(old []byte) error {
		var prev Container
		if old != nil && json.Unmarshal(old, &prev) == nil && !prev.CreatedAt.IsZero() {
			c.CreatedAt = prev.CreatedAt
		} else if c.CreatedAt.IsZero() {
			c.CreatedAt = time.Now().UTC()
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put container %q in namespace %q: %w", c.ID, ns, err)
	}
	return nil
}

// GetContainer returns the container id of namespace ns, or an ErrNotFound error.
func (db *DB) GetContainer(ctx context.Context, ns, id string) (Container, error) {
	var c Container
	found, err := db.getRecord(ctx, ns, bucketContainers, id, &c)
	if err != nil {
		return Container{}, fmt.Errorf("get container %q in namespace %q: %w", id, ns, err)
	}
	if !found {
		return Container{}, fmt.Errorf("container %q in namespace %q: %w", id, ns, errdefs.ErrNotFound)
	}
	return c, nil
}

// ListContainers returns the containers of namespace ns sorted by id.
func (db *DB) ListContainers(ctx context.Context, ns string) ([]Container, error) {
	var out []Container
	err := db.listRecords(ctx, ns, bucketContainers, func(data []byte) error {
		var c Container
		if err := json.Unmarshal(data, &c); err != nil {
			return err
		}
		out = append(out, c)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list containers in namespace %q: %w", ns, err)
	}
	return out, nil
}

// DeleteContainer removes the container record id of namespace ns (its
// snapshot stays until GarbageCollect), or returns an ErrNotFound error.
func (db *DB) DeleteContainer(ctx context.Context, ns, id string) error {
	found, err := db.deleteRecord(ctx, ns, bucketContainers, id)
	if err != nil {
		return fmt.Errorf("delete container %q in namespace %q: %w", id, ns, err)
	}
	if !found {
		return fmt.Errorf("container %q in namespace %q: %w", id, ns, errdefs.ErrNotFound)
	}
	return nil
}
