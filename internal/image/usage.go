package image

import (
	"context"
	"fmt"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// LayerUsage is one layer of an image: its blob and its snapshot.
type LayerUsage struct {
	Digest  digest.Digest
	ChainID string
	// BlobSize is the compressed blob's size in the store (0 if absent).
	BlobSize int64
	// SnapshotSize is the snapshot's own usage (0 if not unpacked).
	SnapshotSize int64
}

// ImageUsage is what one image occupies. Blobs and snapshots shared with
// other images are counted in each.
type ImageUsage struct {
	Name string
	// ContentSize sums the image's blobs in the store.
	ContentSize int64
	// SnapshotSize sums its layer snapshots.
	SnapshotSize int64
	Layers       []LayerUsage
}

// SnapshotUsage is one snapshot's own usage.
type SnapshotUsage struct {
	Key    string
	Kind   snapshot.Kind
	Size   int64
	Inodes int64
}

// Usage is the disk usage of the image stores, in exact bytes.
type Usage struct {
	Images    []ImageUsage
	Snapshots []SnapshotUsage
	// ContentSize sums every blob in the store; SnapshotSize every snapshot.
	ContentSize, SnapshotSize int64
	// Reclaimable sums the blobs and snapshots nothing references (what a
	// prune would free, ingests aside).
	Reclaimable int64
}

// DiskUsage reports the usage of the images of ns and of the whole store.
func (s *Service) DiskUsage(ctx context.Context, ns string) (Usage, error) {
	var u Usage
	blobSizes := map[digest.Digest]int64{}
	if err := s.Content.Walk(ctx, func(i content.Info) error {
		blobSizes[i.Digest] = i.Size
		u.ContentSize += i.Size
		return nil
	}); err != nil {
		return u, fmt.Errorf("disk usage: content: %w", err)
	}
	snapSizes := map[string]int64{}
	if s.Snapshotter != nil {
		var infos []snapshot.Info
		if err := s.Snapshotter.Walk(ctx, func(i snapshot.Info) error {
			infos = append(infos, i)
			return nil
		}); err != nil {
			return u, fmt.Errorf("disk usage: snapshots: %w", err)
		}
		for _, i := range infos {
			su, err := s.Snapshotter.Usage(ctx, i.Key)
			if err != nil {
				if errdefs.IsNotFound(err) {
					continue
				}
				return u, fmt.Errorf("disk usage: snapshot %s: %w", i.Key, err)
			}
			snapSizes[i.Key] = su.Size
			u.SnapshotSize += su.Size
			u.Snapshots = append(u.Snapshots, SnapshotUsage{Key: i.Key, Kind: i.Kind, Size: su.Size, Inodes: su.Inodes})
		}
	}
	imgs, err := s.DB.ListImages(ctx, ns)
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	for _, img := range imgs {
		iu := ImageUsage{Name: img.Name}
		for _, b := range uniq(img.Blobs) {
			iu.ContentSize += blobSizes[b]
		}
		for _, c := range uniq(img.Snapshots) {
			iu.SnapshotSize += snapSizes[c]
		}
		if r, err := resolve(ctx, s.Content, img.Target, s.platform()); err == nil {
			for i, l := range r.Parsed.Layers {
				lu := LayerUsage{Digest: l.Digest, BlobSize: blobSizes[l.Digest]}
				if i < len(r.ChainIDs) {
					lu.ChainID = r.ChainIDs[i]
					lu.SnapshotSize = snapSizes[lu.ChainID]
				}
				iu.Layers = append(iu.Layers, lu)
			}
		}
		u.Images = append(u.Images, iu)
	}
	marks, err := s.DB.Reachable(ctx, s.Content, s.Snapshotter)
	if err != nil {
		return u, fmt.Errorf("disk usage: %w", err)
	}
	for d, size := range blobSizes {
		if _, ok := marks.Blobs[d]; !ok {
			u.Reclaimable += size
		}
	}
	for k, size := range snapSizes {
		if _, ok := marks.Snapshots[k]; !ok {
			u.Reclaimable += size
		}
	}
	return u, nil
}
