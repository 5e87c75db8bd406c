package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// IngestMaxAge is how old (since its last write) an ingest must be before
// GarbageCollect removes it without all=true.
const IngestMaxAge = time.Hour

// GCReport tells what a GarbageCollect removed.
type GCReport struct {
	Blobs     []digest.Digest
	Ingests   []string
	Snapshots []string
	// BytesFreed sums the removed blobs' sizes, the removed ingests'
	// offsets and the removed snapshots' own usage.
	BytesFreed int64
}

// Marks is the set of blobs and snapshots that something references.
type Marks struct {
	Blobs     map[digest.Digest]struct{}
	Snapshots map[string]struct{}
}

// Document media types of manifests and indexes, followed when marking.
const (
	mediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	mediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// maxManifestSize bounds the manifests and indexes read while marking.
const maxManifestSize = 4 << 20

// Reachable marks what images, containers and leases of every namespace
// reference. Blobs: each image's Blobs and Target, plus what Target leads to
// through the manifests and indexes present in cs (cs may be nil), and each
// lease's blobs. Snapshots: each image's Snapshots, each container's
// SnapshotKey and each lease's snapshots, with all their parents found
// through sn.Stat (sn may be nil).
func (db *DB) Reachable(ctx context.Context, cs *content.Store, sn snapshot.Snapshotter) (Marks, error) {
	m := Marks{Blobs: map[digest.Digest]struct{}{}, Snapshots: map[string]struct{}{}}
	var targets []ocispec.Descriptor
	var snaps []string
	err := db.bolt.View(func(tx *bolt.Tx) error {
		v1 := tx.Bucket(bucketV1)
		if lb := v1.Bucket(bucketLeases); lb != nil {
			if err := lb.ForEach(func(k, v []byte) error {
				var l Lease
				if err := json.Unmarshal(v, &l); err != nil {
					return fmt.Errorf("decode lease %q: %w", k, err)
				}
				for _, d := range l.Blobs {
					m.Blobs[d] = struct{}{}
				}
				snaps = append(snaps, l.Snapshots...)
				return nil
			}); err != nil {
				return err
			}
		}
		return v1.ForEachBucket(func(ns []byte) error {
			if ValidateNamespace(string(ns)) != nil {
				return nil
			}
			nsb := v1.Bucket(ns)
			if ib := nsb.Bucket(bucketImages); ib != nil {
				if err := ib.ForEach(func(k, v []byte) error {
					var img Image
					if err := json.Unmarshal(v, &img); err != nil {
						return fmt.Errorf("decode image %q in namespace %q: %w", k, ns, err)
					}
					m.Blobs[img.Target.Digest] = struct{}{}
					targets = append(targets, img.Target)
					for _, d := range img.Blobs {
						m.Blobs[d] = struct{}{}
					}
					snaps = append(snaps, img.Snapshots...)
					return nil
				}); err != nil {
					return err
				}
			}
			if cb := nsb.Bucket(bucketContainers); cb != nil {
				if err := cb.ForEach(func(k, v []byte) error {
					var c Container
					if err := json.Unmarshal(v, &c); err != nil {
						return fmt.Errorf("decode container %q in namespace %q: %w", k, ns, err)
					}
					if c.SnapshotKey != "" {
						snaps = append(snaps, c.SnapshotKey)
					}
					return nil
				}); err != nil {
					return err
				}
			}
			return nil
		})
	})
	if err != nil {
		return Marks{}, fmt.Errorf("mark references: %w", err)
	}
	if cs != nil {
		for _, t := range targets {
			if err := markDescriptor(ctx, cs, t, m.Blobs, 0); err != nil {
				return Marks{}, err
			}
		}
	}
	for _, key := range snaps {
		if err := markSnapshot(ctx, sn, key, m.Snapshots); err != nil {
			return Marks{}, err
		}
	}
	return m, nil
}

// markDescriptor marks the children of an index or manifest found in cs.
// Missing or unreadable documents mark nothing more (the image record's own
// Blobs list still holds).
func markDescriptor(ctx context.Context, cs *content.Store, desc ocispec.Descriptor, marks map[digest.Digest]struct{}, depth int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if depth > 8 {
		return nil
	}
	var children []ocispec.Descriptor
	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, mediaTypeDockerManifestList:
		b, err := cs.ReadAll(ctx, desc.Digest, maxManifestSize)
		if err != nil {
			return nil
		}
		var idx ocispec.Index
		if json.Unmarshal(b, &idx) != nil {
			return nil
		}
		children = idx.Manifests
	case ocispec.MediaTypeImageManifest, mediaTypeDockerManifest:
		b, err := cs.ReadAll(ctx, desc.Digest, maxManifestSize)
		if err != nil {
			return nil
		}
		var man ocispec.Manifest
		if json.Unmarshal(b, &man) != nil {
			return nil
		}
		children = append([]ocispec.Descriptor{man.Config}, man.Layers...)
	default:
		return nil
	}
	for _, c := range children {
		if c.Digest == "" {
			continue
		}
		marks[c.Digest] = struct{}{}
		if err := markDescriptor(ctx, cs, c, marks, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// markSnapshot marks key and its parents.
func markSnapshot(ctx context.Context, sn snapshot.Snapshotter, key string, marks map[string]struct{}) error {
	for key != "" {
		if _, ok := marks[key]; ok {
			return nil
		}
		marks[key] = struct{}{}
		if sn == nil {
			return nil
		}
		info, err := sn.Stat(ctx, key)
		if err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return nil
			}
			return fmt.Errorf("mark snapshot %q: %w", key, err)
		}
		key = info.Parent
	}
	return nil
}

// GarbageCollect marks everything reachable from images, containers and
// leases in every namespace (see Reachable), then removes every other
// snapshot of sn (children before parents), every other blob of cs, and
// every ingest older than IngestMaxAge, or every ingest with all=true (an
// ingest a Writer holds is always left alone). cs or sn may be nil to skip
// them. References cannot be added while it runs. A removal that fails does
// not stop the sweep; the failures are returned joined, with the report of
// what was removed.
func (db *DB) GarbageCollect(ctx context.Context, cs *content.Store, sn snapshot.Snapshotter, all bool) (GCReport, error) {
	db.gc.Lock()
	defer db.gc.Unlock()
	var rep GCReport
	marks, err := db.Reachable(ctx, cs, sn)
	if err != nil {
		return rep, fmt.Errorf("garbage collect: %w", err)
	}
	var errs []error
	if sn != nil {
		if err := sweepSnapshots(ctx, sn, marks.Snapshots, &rep); err != nil {
			errs = append(errs, err)
		}
	}
	if cs != nil {
		if err := sweepContent(ctx, cs, marks.Blobs, all, &rep); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return rep, fmt.Errorf("garbage collect: %w", err)
	}
	return rep, nil
}

func sweepSnapshots(ctx context.Context, sn snapshot.Snapshotter, marks map[string]struct{}, rep *GCReport) error {
	parent := map[string]string{}
	if err := sn.Walk(ctx, func(i snapshot.Info) error {
		parent[i.Key] = i.Parent
		return nil
	}); err != nil {
		return fmt.Errorf("walk snapshots: %w", err)
	}
	depth := func(k string) int {
		d := 0
		for seen := 0; k != "" && seen <= len(parent); seen++ {
			p, ok := parent[k]
			if !ok {
				break
			}
			d++
			k = p
		}
		return d
	}
	type victim struct {
		key   string
		depth int
	}
	var victims []victim
	for k := range parent {
		if _, ok := marks[k]; !ok {
			victims = append(victims, victim{k, depth(k)})
		}
	}
	// Deepest first: every child goes before its parent.
	sort.Slice(victims, func(i, j int) bool {
		if victims[i].depth != victims[j].depth {
			return victims[i].depth > victims[j].depth
		}
		return victims[i].key < victims[j].key
	})
	var errs []error
	for _, v := range victims {
		if err := ctx.Err(); err != nil {
			return err
		}
		var size int64
		if u, err := sn.Usage(ctx, v.key); err == nil {
			size = u.Size
		}
		if err := sn.Remove(ctx, v.key); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				continue
			}
			// ErrFailedPrecondition: a child appeared since the walk.
			errs = append(errs, fmt.Errorf("remove snapshot %q: %w", v.key, err))
			continue
		}
		rep.Snapshots = append(rep.Snapshots, v.key)
		rep.BytesFreed += size
	}
	return errors.Join(errs...)
}

func sweepContent(ctx context.Context, cs *content.Store, marks map[digest.Digest]struct{}, all bool, rep *GCReport) error {
	var victims []content.Info
	if err := cs.Walk(ctx, func(i content.Info) error {
		if _, ok := marks[i.Digest]; !ok {
			victims = append(victims, i)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("walk content: %w", err)
	}
	var errs []error
	for _, v := range victims {
		if err := cs.Delete(ctx, v.Digest); err != nil {
			if !errors.Is(err, errdefs.ErrNotFound) {
				errs = append(errs, err)
			}
			continue
		}
		rep.Blobs = append(rep.Blobs, v.Digest)
		rep.BytesFreed += v.Size
	}
	ingests, err := cs.Ingests(ctx)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	cutoff := time.Now().Add(-IngestMaxAge)
	for _, in := range ingests {
		if !all && in.UpdatedAt.After(cutoff) {
			continue
		}
		if err := cs.AbortIngest(ctx, in.Ref); err != nil {
			if !errors.Is(err, errdefs.ErrNotFound) && !errors.Is(err, errdefs.ErrUnavailable) {
				errs = append(errs, err)
			}
			continue
		}
		rep.Ingests = append(rep.Ingests, in.Ref)
		rep.BytesFreed += in.Offset
	}
	return errors.Join(errs...)
}
