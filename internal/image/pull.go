package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/unpack"
)

// RetryLeaseMaxAge is how long the blobs and snapshots a failed pull
// verified are kept for a retry (the same window as partial ingests,
// metadata.IngestMaxAge).
const RetryLeaseMaxAge = metadata.IngestMaxAge

// retryLeasePrefix names the leases that keep a failed pull's work.
const retryLeasePrefix = "pull-retry-"

// retryLeaseID is the lease that keeps what a failed pull of name in ns
// verified, until a pull of it succeeds or RetryLeaseMaxAge passes.
func retryLeaseID(ns, name string) string {
	return retryLeasePrefix + digest.FromString(ns + "/" + name).Encoded()[:24]
}

// Pull fetches ref into the store, unpacks it onto snapshots and records the
// image in namespace ns under its normalized name. The unpack starts once
// the manifest and config are known and extracts each layer as soon as its
// blob is committed to the store, while the later ones download; whichever
// of the download and the unpack fails first cancels the other, and its
// error is returned. Everything it fetches is held by a lease until the
// image record exists. On failure the blobs and committed snapshots it
// verified move to a retry lease (kept RetryLeaseMaxAge, dropped when a pull
// of the name succeeds), then a garbage collection reclaims the rest;
// partial downloads stay as ingests (younger than an hour), so a retry
// downloads neither a verified blob again nor the verified part of a cut
// one.
func (s *Service) Pull(ctx context.Context, ns, ref string, opts remote.Options) (_ metadata.Image, retErr error) {
	name, err := NormalizeName(ref)
	if err != nil {
		return metadata.Image{}, err
	}
	if opts.Platform.OS == "" {
		opts.Platform = s.platform()
	}
	if err := s.RecoverLeases(ctx); err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: %w", name, err)
	}
	if err := s.expireRetryLeases(ctx); err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: %w", name, err)
	}
	retry := retryLeaseID(ns, name)
	lease := pullLeaseID(retry)
	if err := s.DB.AddLease(ctx, lease, nil, nil); err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: lease: %w", name, err)
	}
	// Lease each blob (index and manifests too) before the pull looks it
	// up or writes it, so that a collection meanwhile keeps it; only the
	// config and layers (those Progress reports) are worth keeping for a
	// retry.
	var mu sync.Mutex
	leased := map[digest.Digest]bool{}
	data := map[digest.Digest]bool{}
	defer func() {
		// A fresh context: the cleanup must run even if ctx was cancelled.
		cctx := context.WithoutCancel(ctx)
		if retErr != nil {
			mu.Lock()
			keep := func(d digest.Digest) bool { return data[d] }
			err := s.keepForRetry(cctx, lease, retry, keep)
			mu.Unlock()
			if err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("pull %s: keep for a retry: %w", name, err))
			}
		} else if err := s.DB.DeleteLease(cctx, retry); err != nil && !errdefs.IsNotFound(err) {
			retErr = fmt.Errorf("pull %s: release retry lease: %w", name, err)
		}
		if err := s.DB.DeleteLease(cctx, lease); err != nil && retErr == nil {
			retErr = fmt.Errorf("pull %s: release lease: %w", name, err)
		}
		if retErr != nil {
			if _, err := s.DB.GarbageCollect(cctx, s.Content, s.Snapshotter, false); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("pull %s: garbage collect after failure: %w", name, err))
			}
		}
	}()
	userLease := opts.Lease
	opts.Lease = func(lctx context.Context, d digest.Digest) error {
		mu.Lock()
		defer mu.Unlock()
		if !leased[d] {
			if err := s.DB.AddLease(lctx, lease, []digest.Digest{d}, nil); err != nil {
				return err
			}
			leased[d] = true
		}
		if userLease != nil {
			return userLease(lctx, d)
		}
		return nil
	}
	// The unpack runs beside the download of the layers, from the moment
	// the manifest and config are known: each layer is extracted once its
	// blob is committed (arrivals). Whichever side fails first stops the
	// other, and its error is the pull's.
	blobs := newArrivals(s.Content)
	userProgress := opts.Progress
	opts.Progress = func(p remote.Progress) {
		mu.Lock()
		data[p.Digest] = true
		mu.Unlock()
		if p.Done && p.Err == nil {
			blobs.arrived(p.Digest)
		}
		if userProgress != nil {
			userProgress(p)
		}
	}
	fctx, cancelFetch := context.WithCancel(ctx)
	defer cancelFetch()
	uctx, cancelUnpack := context.WithCancel(ctx)
	defer cancelUnpack()
	var failed firstError
	var unpacked chan error // set when the unpack starts; it sends its result
	userManifest := opts.OnManifest
	opts.OnManifest = func(mctx context.Context, target ocispec.Descriptor, m ocispec.Manifest, cfg ocispec.Image) error {
		if userManifest != nil {
			if err := userManifest(mctx, target, m, cfg); err != nil {
				return err
			}
		}
		// The snapshots the unpack commits, leased before it writes them
		// (its active extract-* snapshots are leased one by one below).
		if err := s.DB.AddLease(mctx, lease, nil, chainIDs(cfg.RootFS.DiffIDs)); err != nil {
			return fmt.Errorf("lease: %w", err)
		}
		uopts := unpack.Options{Limits: s.UnpackLimits, Lease: func(lctx context.Context, key string) error {
			return s.DB.AddLease(lctx, lease, nil, []string{key})
		}}
		unpacked = make(chan error, 1)
		go func() {
			_, err := unpack.UnpackFrom(uctx, blobs, s.Snapshotter, m, cfg, uopts)
			if err != nil {
				failed.set(fmt.Errorf("pull %s: unpack: %w", name, err))
				cancelFetch()
			}
			unpacked <- err
		}()
		return nil
	}
	target, r, err := s.fetch(fctx, name, lease, opts)
	if err != nil {
		failed.set(err)
		cancelUnpack()
	} else {
		mu.Lock()
		for _, d := range append(r.Blobs(), target.Digest) {
			data[d] = true // the whole image is fetched: a failed unpack keeps it all
		}
		mu.Unlock()
	}
	blobs.finish(err)
	if unpacked != nil {
		<-unpacked
	} else if err == nil {
		err = fmt.Errorf("pull %s: the manifest was never reported: nothing unpacked: %w", name, errdefs.ErrFailedPrecondition)
		failed.set(err)
	}
	if err := failed.get(); err != nil {
		return metadata.Image{}, err
	}
	img := metadata.Image{Name: name, Target: target, Blobs: uniq(append([]digest.Digest{target.Digest}, r.Blobs()...)), Snapshots: r.ChainIDs}
	if err := s.putImage(ctx, ns, img); err != nil {
		return metadata.Image{}, fmt.Errorf("pull %s: %w", name, err)
	}
	return s.DB.GetImage(ctx, ns, name)
}

// fetch runs remote.Pull, reads back the manifest and config it chose for
// the platform and leases the whole image (blobs and snapshots).
func (s *Service) fetch(ctx context.Context, name, lease string, opts remote.Options) (ocispec.Descriptor, *Resolved, error) {
	target, _, _, err := remote.Pull(ctx, s.Content, name, opts)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	r, err := resolve(ctx, s.Content, target, opts.Platform)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("pull %s: %w", name, err)
	}
	if err := s.DB.AddLease(ctx, lease, append(r.Blobs(), target.Digest), r.ChainIDs); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("pull %s: lease: %w", name, err)
	}
	return target, r, nil
}

// processLeaseOwner marks the pull and import leases this process takes: a
// lease of another owner belongs to a gantryd that was killed (only one
// runs on a root), and RecoverLeases takes it over.
var processLeaseOwner = newLeaseOwner()

func newLeaseOwner() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// pullLeaseID names the lease of one pull: "pull-<owner>-<random>.<h>",
// where pull-retry-<h> is the retry lease of the image it pulls.
func pullLeaseID(retry string) string {
	return newLeaseID("pull") + "." + strings.TrimPrefix(retry, retryLeasePrefix)
}

// RecoverLeases takes over the leases of pulls and imports that a killed
// process left (those of another owner than this process): what a killed
// pull verified moves to the retry lease of the image it pulled, as if the
// pull had failed, and the leases go. Pull and Remove call it; a daemon may
// call it once at start so that a collection right after a crash does not
// have to wait for them. Leases this process holds are untouched.
func (s *Service) RecoverLeases(ctx context.Context) error {
	leases, err := s.DB.ListLeases(ctx)
	if err != nil {
		return fmt.Errorf("recover leases: %w", err)
	}
	for _, l := range leases {
		var rest string
		switch {
		case strings.HasPrefix(l.ID, retryLeasePrefix):
			continue
		case strings.HasPrefix(l.ID, "pull-"):
			rest = strings.TrimPrefix(l.ID, "pull-")
		case strings.HasPrefix(l.ID, "import-"):
			rest = strings.TrimPrefix(l.ID, "import-")
		default:
			continue // not ours to judge
		}
		if owner, _, ok := strings.Cut(rest, "-"); ok && owner == processLeaseOwner {
			continue
		}
		if _, h, ok := strings.Cut(rest, "."); ok && strings.HasPrefix(l.ID, "pull-") && h != "" {
			if err := s.keepForRetry(ctx, l.ID, retryLeasePrefix+h, nil); err != nil {
				return fmt.Errorf("recover lease %s: %w", l.ID, err)
			}
		}
		if err := s.DB.DeleteLease(ctx, l.ID); err != nil && !errdefs.IsNotFound(err) {
			return fmt.Errorf("recover lease %s: %w", l.ID, err)
		}
	}
	return nil
}

// keepForRetry adds what the lease holds (the blobs and snapshots of a
// failed pull, those that exist, and of the blobs only those keep accepts
// if it is set) to the retry lease.
func (s *Service) keepForRetry(ctx context.Context, lease, retry string, keep func(digest.Digest) bool) error {
	leases, err := s.DB.ListLeases(ctx)
	if err != nil {
		return err
	}
	for _, l := range leases {
		if l.ID != lease {
			continue
		}
		var blobs []digest.Digest
		for _, d := range l.Blobs {
			if keep != nil && !keep(d) {
				continue
			}
			if _, err := s.Content.Info(ctx, d); err == nil {
				blobs = append(blobs, d)
			}
		}
		var snaps []string
		for _, k := range l.Snapshots {
			// Committed layers only: a half-written extract-* snapshot
			// is worth nothing to a retry (system check reports it,
			// prune removes it).
			if info, err := s.Snapshotter.Stat(ctx, k); err == nil && info.Kind == snapshot.KindCommitted {
				snaps = append(snaps, k)
			}
		}
		if len(blobs) == 0 && len(snaps) == 0 {
			return nil
		}
		return s.DB.AddLease(ctx, retry, blobs, snaps)
	}
	return nil
}

// expireRetryLeases drops the retry leases of failed pulls older than
// RetryLeaseMaxAge (the next garbage collection reclaims what they held).
func (s *Service) expireRetryLeases(ctx context.Context) error {
	leases, err := s.DB.ListLeases(ctx)
	if err != nil {
		return err
	}
	cutoff := time.Now().Add(-RetryLeaseMaxAge)
	for _, l := range leases {
		if strings.HasPrefix(l.ID, retryLeasePrefix) && l.UpdatedAt.Before(cutoff) {
			if err := s.DB.DeleteLease(ctx, l.ID); err != nil && !errdefs.IsNotFound(err) {
				return err
			}
		}
	}
	return nil
}
