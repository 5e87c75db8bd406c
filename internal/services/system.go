package services

import (
	"context"
	"runtime"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

type systemServer struct {
	gantryv1.UnimplementedSystemServiceServer
	m    Maintenance
	info DaemonInfo
}

func (s *systemServer) DiskUsage(ctx context.Context, _ *gantryv1.DiskUsageRequest) (*gantryv1.DiskUsageResponse, error) {
	du, err := s.m.DiskUsage(ctx, Namespace(ctx))
	if err != nil {
		return nil, err
	}
	out := &gantryv1.DiskUsageResponse{
		ContentBytes:     du.ContentBytes,
		SnapshotBytes:    du.SnapshotBytes,
		ReclaimableBytes: du.ReclaimableBytes,
	}
	for _, i := range du.Images {
		out.Images = append(out.Images, &gantryv1.ImageUsage{Name: i.Name, Size: i.Size, UniqueSize: i.UniqueSize})
	}
	for _, b := range du.Blobs {
		out.Blobs = append(out.Blobs, &gantryv1.BlobUsage{Digest: b.Digest.String(), Size: b.Size, Referenced: b.Referenced})
	}
	for _, sn := range du.Snapshots {
		out.Snapshots = append(out.Snapshots, &gantryv1.SnapshotUsage{Key: sn.Key, Size: sn.Size, Inodes: sn.Inodes, Referenced: sn.Referenced})
	}
	return out, nil
}

func (s *systemServer) Prune(ctx context.Context, req *gantryv1.PruneRequest) (*gantryv1.PruneResponse, error) {
	r, err := s.m.Prune(ctx, req.GetAll())
	if err != nil {
		return nil, err
	}
	out := &gantryv1.PruneResponse{RemovedSnapshots: r.RemovedSnapshots, ReclaimedBytes: r.ReclaimedBytes}
	for _, d := range r.RemovedBlobs {
		out.RemovedBlobs = append(out.RemovedBlobs, d.String())
	}
	return out, nil
}

func (s *systemServer) Check(ctx context.Context, _ *gantryv1.CheckRequest) (*gantryv1.CheckResponse, error) {
	r, err := s.m.Check(ctx)
	if err != nil {
		return nil, err
	}
	out := &gantryv1.CheckResponse{BlobsChecked: r.BlobsChecked, SnapshotsChecked: r.SnapshotsChecked}
	for _, p := range r.Problems {
		out.Problems = append(out.Problems, &gantryv1.CheckProblem{Kind: p.Kind, Subject: p.Subject, Message: p.Message})
	}
	return out, nil
}

func (s *systemServer) Version(context.Context, *gantryv1.VersionRequest) (*gantryv1.VersionResponse, error) {
	return &gantryv1.VersionResponse{Version: s.info.Version, GoVersion: runtime.Version()}, nil
}

func (s *systemServer) Info(context.Context, *gantryv1.InfoRequest) (*gantryv1.InfoResponse, error) {
	i := s.info
	return &gantryv1.InfoResponse{Root: i.Root, State: i.State, Address: i.Address, Snapshotter: i.Snapshotter, Pid: int32(i.PID)}, nil
}
