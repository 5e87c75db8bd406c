package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Image is a named reference to an image's target descriptor (an index or a
// manifest) and to everything it needs.
type Image struct {
	Name      string             `json:"name"`
	Target    ocispec.Descriptor `json:"target"`
	CreatedAt time.Time          `json:"createdAt"`
	UpdatedAt time.Time          `json:"updatedAt"`
	Labels    map[string]string  `json:"labels,omitempty"`
	// Blobs is every blob digest the image needs (index, manifests, config,
	// layers); Snapshots the chain IDs of its unpacked layers. Garbage
	// collection keeps exactly these (and what Target leads to in the store).
	Blobs     []digest.Digest `json:"blobs,omitempty"`
	Snapshots []string        `json:"snapshots,omitempty"`
}

// PutImage creates or replaces the image img.Name in namespace ns. On
// replace, CreatedAt is kept; UpdatedAt is always set to now.
func (db *DB) PutImage(ctx context.Context, ns string, img Image) error {
	if img.Name == "" {
		return fmt.Errorf("image name: empty: %w", errdefs.ErrInvalidArgument)
	}
	if err := img.Target.Digest.Validate(); err != nil {
		return fmt.Errorf("image %q: target digest %q: %w: %w", img.Name, img.Target.Digest, errdefs.ErrInvalidArgument, err)
	}
	for _, d := range img.Blobs {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("image %q: blob digest %q: %w: %w", img.Name, d, errdefs.ErrInvalidArgument, err)
		}
	}
	now := time.Now().UTC()
	img.UpdatedAt = now
	err := db.putRecord(ctx, ns, bucketImages, img.Name, &img, func(old []byte) error {
		var prev Image
		if old != nil && json.Unmarshal(old, &prev) == nil && !prev.CreatedAt.IsZero() {
			img.CreatedAt = prev.CreatedAt
		} else if img.CreatedAt.IsZero() {
			img.CreatedAt = now
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("put image %q in namespace %q: %w", img.Name, ns, err)
	}
	return nil
}

// GetImage returns the image name of namespace ns, or an ErrNotFound error.
func (db *DB) GetImage(ctx context.Context, ns, name string) (Image, error) {
	var img Image
	found, err := db.getRecord(ctx, ns, bucketImages, name, &img)
	if err != nil {
		return Image{}, fmt.Errorf("get image %q in namespace %q: %w", name, ns, err)
	}
	if !found {
		return Image{}, fmt.Errorf("image %q in namespace %q: %w", name, ns, errdefs.ErrNotFound)
	}
	return img, nil
}

// ListImages returns the images of namespace ns sorted by name.
func (db *DB) ListImages(ctx context.Context, ns string) ([]Image, error) {
	var out []Image
	err := db.listRecords(ctx, ns, bucketImages, func(data []byte) error {
		var img Image
		if err := json.Unmarshal(data, &img); err != nil {
			return err
		}
		out = append(out, img)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list images in namespace %q: %w", ns, err)
	}
	return out, nil
}

// DeleteImage removes the image record name of namespace ns (its blobs and
// snapshots stay until GarbageCollect), or returns an ErrNotFound error.
func (db *DB) DeleteImage(ctx context.Context, ns, name string) error {
	found, err := db.deleteRecord(ctx, ns, bucketImages, name)
	if err != nil {
		return fmt.Errorf("delete image %q in namespace %q: %w", name, ns, err)
	}
	if !found {
		return fmt.Errorf("image %q in namespace %q: %w", name, ns, errdefs.ErrNotFound)
	}
	return nil
}

// ImageInUseError is why DeleteUnusedImage kept an image name: the
// containers of the namespace that use it.
type ImageInUseError struct {
	// Name is the image name, Target its target digest.
	Name   string
	Target digest.Digest
	// Containers are the ids of the containers that use it, sorted.
	Containers []string
}

func (e *ImageInUseError) Error() string {
	ids := make([]string, 0, 3)
	for _, id := range e.Containers[:min(3, len(e.Containers))] {
		ids = append(ids, id[:min(12, len(id))])
	}
	who := "container " + ids[0] + " is"
	if len(e.Containers) > 1 {
		who = "containers " + strings.Join(ids, ", ")
		if more := len(e.Containers) - len(ids); more > 0 {
			who += fmt.Sprintf(" and %d more", more)
		}
		who += " are"
	}
	return fmt.Sprintf("%s using image %s (must force)", who, shortHex(e.Target))
}

// Unwrap gives the error its kind: ErrFailedPrecondition.
func (e *ImageInUseError) Unwrap() error { return errdefs.ErrFailedPrecondition }

// shortHex is a digest's first 12 hex digits, as docker shows image ids.
func shortHex(d digest.Digest) string {
	h := d.Encoded()
	return h[:min(12, len(h))]
}

// DeleteUnusedImage removes the image record name of namespace ns, as
// DeleteImage does, unless a container of ns uses it: one created from the
// image the name leads to (its target), either from that very name or
// while no other name of ns leads to the target (removing the last name of
// a container's image is what docker refuses). A container recorded
// without ImageTarget uses the name it was created from. DeleteUnusedImage
// then returns an *ImageInUseError, kind ErrFailedPrecondition, and removes
// nothing. The check and the removal are one transaction, so a container
// recorded meanwhile is seen.
func (db *DB) DeleteUnusedImage(ctx context.Context, ns, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := ValidateNamespace(ns); err != nil {
		return err
	}
	found := false
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		ib := kindBucket(tx, ns, bucketImages)
		var data []byte
		if ib != nil {
			data = ib.Get([]byte(name))
		}
		if data == nil {
			return nil
		}
		found = true
		var img Image
		if err := json.Unmarshal(data, &img); err != nil {
			return fmt.Errorf("decode image %q: %w", name, err)
		}
		lastName := true
		if err := ib.ForEach(func(k, v []byte) error {
			var other struct {
				Target struct {
					Digest digest.Digest `json:"digest"`
				} `json:"target"`
			}
			if string(k) == name || !lastName {
				return nil
			}
			if err := json.Unmarshal(v, &other); err != nil {
				return fmt.Errorf("decode image %q: %w", k, err)
			}
			lastName = other.Target.Digest != img.Target.Digest
			return nil
		}); err != nil {
			return err
		}
		var users []string
		if cb := kindBucket(tx, ns, bucketContainers); cb != nil {
			if err := cb.ForEach(func(k, v []byte) error {
				var c Container
				if err := json.Unmarshal(v, &c); err != nil {
					return fmt.Errorf("decode container %q: %w", k, err)
				}
				if (c.ImageTarget == "" && c.Image == name) ||
					(c.ImageTarget == img.Target.Digest && (c.Image == name || lastName)) {
					users = append(users, c.ID)
				}
				return nil
			}); err != nil {
				return err
			}
		}
		if len(users) > 0 {
			return &ImageInUseError{Name: name, Target: img.Target.Digest, Containers: users}
		}
		return ib.Delete([]byte(name))
	})
	var inUse *ImageInUseError
	switch {
	case errors.As(err, &inUse):
		return err
	case err != nil:
		return fmt.Errorf("delete image %q in namespace %q: %w", name, ns, err)
	case !found:
		return fmt.Errorf("image %q in namespace %q: %w", name, ns, errdefs.ErrNotFound)
	}
	return nil
}
