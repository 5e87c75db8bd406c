package metadata

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

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
