package image

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/unpack"
)

// Pull fetches ref into the store, unpacks it onto snapshots and records the
// image in namespace ns under its normalized name. Everything it fetches is
// held by a lease until the image record exists; on failure the lease goes
// and a garbage collection reclaims the leftovers (ingests younger than an
// hour stay, so a retry resumes).
func (s *Service) Pull(ctx context.Context, ns, ref string, opts remote.Options) (_ metadata.Image, retErr error) {
	name, err := NormalizeName(ref)
	if err != nil {
		return metadata.Image{}, err
	}
	if opts.Platform.OS == "" {
		opts.Platform = s.platform()
	}
	lease := newLeaseID("pull")
	if err := s.DB.AddLease(ctx, lease, nil, nil); err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: lease: %w", name, err)
	}
	defer func() {
		// A fresh context: the cleanup must run even if ctx was cancelled.
		cctx := context.WithoutCancel(ctx)
		if err := s.DB.DeleteLease(cctx, lease); err != nil && retErr == nil {
			retErr = fmt.Errorf("pull %s: release lease: %w", name, err)
		}
		if retErr != nil {
			if _, err := s.DB.GarbageCollect(cctx, s.Content, s.Snapshotter, false); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("pull %s: garbage collect after failure: %w", name, err))
			}
		}
	}()
	// Lease each blob as soon as the download starts.
	var mu sync.Mutex
	leased := map[digest.Digest]bool{}
	userProgress := opts.Progress
	opts.Progress = func(p remote.Progress) {
		mu.Lock()
		if !leased[p.Digest] && p.Digest != "" {
			leased[p.Digest] = true
			_ = s.DB.AddLease(ctx, lease, []digest.Digest{p.Digest}, nil)
		}
		mu.Unlock()
		if userProgress != nil {
			userProgress(p)
		}
	}
	target, _, _, err := remote.Pull(ctx, s.Content, name, opts)
	if err != nil {
		return metadata.Image{}, err
	}
	r, err := resolve(ctx, s.Content, target, opts.Platform)
	if err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: %w", name, err)
	}
	if err := s.DB.AddLease(ctx, lease, append(r.Blobs(), target.Digest), r.ChainIDs); err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: lease: %w", name, err)
	}
	if _, err := unpack.Unpack(ctx, s.Content, s.Snapshotter, r.Parsed, r.Config); err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: unpack: %w", name, err)
	}
	img := metadata.Image{Name: name, Target: target, Blobs: uniq(append([]digest.Digest{target.Digest}, r.Blobs()...)), Snapshots: r.ChainIDs}
	if err := s.DB.PutImage(ctx, ns, img); err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: %w", name, err)
	}
	return s.DB.GetImage(ctx, ns, name)
}
