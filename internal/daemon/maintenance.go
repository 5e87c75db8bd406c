package daemon

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/mountinfo"
	"github.com/gantry-project/gantry/internal/services"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// maintenance implements services.Maintenance over the metadata database,
// the content store and the snapshotter.
type maintenance struct {
	db   *metadata.DB
	cs   *content.Store
	sn   snapshot.Snapshotter
	root string // mounts below it are reported by Check
	// ctrs, when set, adds the containers' findings to Check and their
	// repairs to Prune.
	ctrs *containers
}

var _ services.Maintenance = (*maintenance)(nil)

// DiskUsage counts every blob and snapshot once, and charges each image of
// ns with what its records reference (a snapshot's parents are the image's
// lower layers, also in its record).
func (m *maintenance) DiskUsage(ctx context.Context, ns string) (services.DiskUsage, error) {
	var du services.DiskUsage
	marks, err := m.db.Reachable(ctx, m.cs, m.sn)
	if err != nil {
		return du, fmt.Errorf("disk usage: %w", err)
	}
	blobSize := map[digest.Digest]int64{}
	err = m.cs.Walk(ctx, func(i content.Info) error {
		_, ref := marks.Blobs[i.Digest]
		du.Blobs = append(du.Blobs, services.BlobUsage{Digest: i.Digest, Size: i.Size, Referenced: ref})
		du.ContentBytes += i.Size
		if !ref {
			du.ReclaimableBytes += i.Size
		}
		blobSize[i.Digest] = i.Size
		return nil
	})
	if err != nil {
		return du, fmt.Errorf("disk usage: walk content: %w", err)
	}
	snapSize := map[string]int64{}
	var keys []string
	err = m.sn.Walk(ctx, func(i snapshot.Info) error {
		keys = append(keys, i.Key)
		return nil
	})
	if err != nil {
		return du, fmt.Errorf("disk usage: walk snapshots: %w", err)
	}
	for _, k := range keys {
		u, err := m.sn.Usage(ctx, k)
		if errors.Is(err, errdefs.ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return du, fmt.Errorf("disk usage: %w", err)
		}
		_, ref := marks.Snapshots[k]
		du.Snapshots = append(du.Snapshots, services.SnapshotUsage{Key: k, Size: u.Size, Inodes: u.Inodes, Referenced: ref})
		du.SnapshotBytes += u.Size
		if !ref {
			du.ReclaimableBytes += u.Size
		}
		snapSize[k] = u.Size
	}

	// How many images, in every namespace, reference each blob and snapshot.
	namespaces, err := m.db.ListNamespaces(ctx)
	if err != nil {
		return du, fmt.Errorf("disk usage: %w", err)
	}
	blobRefs := map[digest.Digest]int{}
	snapRefs := map[string]int{}
	var mine []metadata.Image
	for _, n := range namespaces {
		imgs, err := m.db.ListImages(ctx, n)
		if err != nil {
			return du, fmt.Errorf("disk usage: %w", err)
		}
		for _, img := range imgs {
			for _, d := range dedupe(img.Blobs) {
				blobRefs[d]++
			}
			for _, s := range dedupe(img.Snapshots) {
				snapRefs[s]++
			}
		}
		if n == ns {
			mine = imgs
		}
	}
	for _, img := range mine {
		u := services.ImageUsage{Name: img.Name}
		for _, d := range dedupe(img.Blobs) {
			u.Size += blobSize[d]
			if blobRefs[d] == 1 {
				u.UniqueSize += blobSize[d]
			}
		}
		for _, s := range dedupe(img.Snapshots) {
			u.Size += snapSize[s]
			if snapRefs[s] == 1 {
				u.UniqueSize += snapSize[s]
			}
		}
		du.Images = append(du.Images, u)
	}
	return du, nil
}

func dedupe[T comparable](in []T) []T {
	seen := make(map[T]struct{}, len(in))
	out := in[:0:0]
	for _, v := range in {
		if _, ok := seen[v]; !ok {
			seen[v] = struct{}{}
			out = append(out, v)
		}
	}
	return out
}

func (m *maintenance) Prune(ctx context.Context, all bool) (services.PruneReport, error) {
	// Containers' leftovers first: an orphan bundle must be unmounted
	// before the collector removes its snapshot.
	if m.ctrs != nil {
		findings, err := m.ctrs.checkContainers(ctx)
		if err != nil {
			return services.PruneReport{}, fmt.Errorf("prune: %w", err)
		}
		for _, f := range findings {
			if f.repair == nil {
				continue
			}
			if err := f.repair(ctx); err != nil {
				m.ctrs.logger.Warn("prune: repair failed", "kind", f.Kind, "subject", f.Subject, "error", err)
				continue
			}
			m.ctrs.logger.Info("prune: repaired", "kind", f.Kind, "subject", f.Subject, "problem", f.Message)
		}
	}
	rep, err := m.db.GarbageCollect(ctx, m.cs, m.sn, all)
	out := services.PruneReport{RemovedBlobs: rep.Blobs, RemovedSnapshots: rep.Snapshots, ReclaimedBytes: rep.BytesFreed}
	return out, err
}

// Check verifies every blob's digest and reports orphans: unreferenced
// blobs and snapshots, unfinished ingests, snapshots whose parent is
// missing, and mounts left below the root.
func (m *maintenance) Check(ctx context.Context) (services.CheckReport, error) {
	var rep services.CheckReport
	marks, err := m.db.Reachable(ctx, m.cs, m.sn)
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	var blobs []digest.Digest
	if err := m.cs.Walk(ctx, func(i content.Info) error {
		blobs = append(blobs, i.Digest)
		return nil
	}); err != nil {
		return rep, fmt.Errorf("check: walk content: %w", err)
	}
	for _, d := range blobs {
		rep.BlobsChecked++
		if err := m.cs.Verify(ctx, d); err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			rep.Problems = append(rep.Problems, services.Problem{Kind: "blob", Subject: d.String(), Message: err.Error()})
			continue
		}
		if _, ok := marks.Blobs[d]; !ok {
			rep.Problems = append(rep.Problems, services.Problem{Kind: "blob", Subject: d.String(), Message: "referenced by nothing (gantry system prune removes it)"})
		}
	}
	ingests, err := m.cs.Ingests(ctx)
	if err != nil {
		return rep, fmt.Errorf("check: list ingests: %w", err)
	}
	for _, in := range ingests {
		rep.Problems = append(rep.Problems, services.Problem{Kind: "ingest", Subject: in.Ref,
			Message: fmt.Sprintf("unfinished: %d of %d bytes of %s, last written %s (a pull resumes it; gantry system prune --all removes it)", in.Offset, in.Total, in.Expected, in.UpdatedAt.Format("2006-01-02 15:04:05"))})
	}
	infos := map[string]snapshot.Info{}
	if err := m.sn.Walk(ctx, func(i snapshot.Info) error {
		infos[i.Key] = i
		return nil
	}); err != nil {
		return rep, fmt.Errorf("check: walk snapshots: %w", err)
	}
	for k, i := range infos {
		rep.SnapshotsChecked++
		if _, ok := marks.Snapshots[k]; !ok {
			msg := fmt.Sprintf("%s snapshot referenced by nothing (gantry system prune removes it)", i.Kind)
			if strings.HasPrefix(k, "container/") {
				msg = "snapshot of a container that does not exist (gantry system prune removes it)"
			}
			rep.Problems = append(rep.Problems, services.Problem{Kind: "snapshot", Subject: k, Message: msg})
		}
		if i.Parent != "" {
			if _, ok := infos[i.Parent]; !ok {
				rep.Problems = append(rep.Problems, services.Problem{Kind: "snapshot", Subject: k, Message: fmt.Sprintf("parent %s is missing", i.Parent)})
			}
		}
	}
	mounts, err := mountsBelow(m.root)
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	for _, mp := range mounts {
		rep.Problems = append(rep.Problems, services.Problem{Kind: "mount", Subject: mp, Message: "left mounted below the root"})
	}
	if m.ctrs != nil {
		findings, err := m.ctrs.checkContainers(ctx)
		if err != nil {
			return rep, fmt.Errorf("check: %w", err)
		}
		for _, f := range findings {
			rep.Problems = append(rep.Problems, f.Problem)
		}
	}
	return rep, nil
}

// mountsBelow returns the mount points strictly below dir, from
// /proc/self/mountinfo.
func mountsBelow(dir string) ([]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	defer f.Close()
	prefix := filepath.Clean(dir) + "/"
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := mountinfo.Unescape(fields[4])
		if strings.HasPrefix(mp, prefix) {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mounts: %w", err)
	}
	return out, nil
}
