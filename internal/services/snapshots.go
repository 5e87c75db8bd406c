package services

import (
	"context"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/snapshot"
)

type snapshotServer struct {
	gantryv1.UnimplementedSnapshotServiceServer
	sn snapshot.Snapshotter
}

func kindToAPI(k snapshot.Kind) gantryv1.SnapshotKind {
	switch k {
	case snapshot.KindView:
		return gantryv1.SnapshotKind_SNAPSHOT_KIND_VIEW
	case snapshot.KindActive:
		return gantryv1.SnapshotKind_SNAPSHOT_KIND_ACTIVE
	case snapshot.KindCommitted:
		return gantryv1.SnapshotKind_SNAPSHOT_KIND_COMMITTED
	default:
		return gantryv1.SnapshotKind_SNAPSHOT_KIND_UNSPECIFIED
	}
}

func (s *snapshotServer) List(ctx context.Context, _ *gantryv1.ListSnapshotsRequest) (*gantryv1.ListSnapshotsResponse, error) {
	var out []*gantryv1.SnapshotInfo
	err := s.sn.Walk(ctx, func(i snapshot.Info) error {
		out = append(out, &gantryv1.SnapshotInfo{
			Key:       i.Key,
			Parent:    i.Parent,
			Kind:      kindToAPI(i.Kind),
			CreatedAt: timestamp(i.Created),
			Labels:    i.Labels,
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &gantryv1.ListSnapshotsResponse{Snapshots: out}, nil
}

func (s *snapshotServer) Mounts(ctx context.Context, req *gantryv1.SnapshotMountsRequest) (*gantryv1.SnapshotMountsResponse, error) {
	if err := required("key", req.GetKey()); err != nil {
		return nil, err
	}
	mounts, err := s.sn.Mounts(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	out := make([]*gantryv1.Mount, 0, len(mounts))
	for _, m := range mounts {
		out = append(out, &gantryv1.Mount{Type: m.Type, Source: m.Source, Options: m.Options})
	}
	return &gantryv1.SnapshotMountsResponse{Mounts: out}, nil
}

func (s *snapshotServer) Usage(ctx context.Context, req *gantryv1.SnapshotUsageRequest) (*gantryv1.SnapshotUsageResponse, error) {
	if err := required("key", req.GetKey()); err != nil {
		return nil, err
	}
	u, err := s.sn.Usage(ctx, req.GetKey())
	if err != nil {
		return nil, err
	}
	return &gantryv1.SnapshotUsageResponse{Size: u.Size, Inodes: u.Inodes}, nil
}
