package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// ListContent lists every blob of the content store.
func (c *Client) ListContent(ctx context.Context) ([]*gantryv1.ContentInfo, error) {
	resp, err := c.content.List(ctx, &gantryv1.ListContentRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetBlobs(), nil
}

// ContentInfo describes one blob.
func (c *Client) ContentInfo(ctx context.Context, digest string) (*gantryv1.ContentInfo, error) {
	resp, err := c.content.Info(ctx, &gantryv1.ContentInfoRequest{Digest: digest})
	if err != nil {
		return nil, err
	}
	return resp.GetInfo(), nil
}

// ReadContent copies the blob digest to w.
func (c *Client) ReadContent(ctx context.Context, digest string, w io.Writer) error {
	stream, err := c.content.Read(ctx, &gantryv1.ReadContentRequest{Digest: digest})
	if err != nil {
		return err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := w.Write(msg.GetData()); err != nil {
			return fmt.Errorf("read %s: write: %w", digest, err)
		}
	}
}

// ListSnapshots lists every snapshot.
func (c *Client) ListSnapshots(ctx context.Context) ([]*gantryv1.SnapshotInfo, error) {
	resp, err := c.snapshots.List(ctx, &gantryv1.ListSnapshotsRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetSnapshots(), nil
}

// SnapshotMounts returns the mounts that show the snapshot key.
func (c *Client) SnapshotMounts(ctx context.Context, key string) ([]*gantryv1.Mount, error) {
	resp, err := c.snapshots.Mounts(ctx, &gantryv1.SnapshotMountsRequest{Key: key})
	if err != nil {
		return nil, err
	}
	return resp.GetMounts(), nil
}

// SnapshotUsage returns the snapshot's own disk use.
func (c *Client) SnapshotUsage(ctx context.Context, key string) (*gantryv1.SnapshotUsageResponse, error) {
	return c.snapshots.Usage(ctx, &gantryv1.SnapshotUsageRequest{Key: key})
}

// DiskUsage reports the daemon's disk use.
func (c *Client) DiskUsage(ctx context.Context) (*gantryv1.DiskUsageResponse, error) {
	return c.system.DiskUsage(ctx, &gantryv1.DiskUsageRequest{})
}

// Prune collects unreferenced blobs and snapshots; all also removes every
// unfinished ingest.
func (c *Client) Prune(ctx context.Context, all bool) (*gantryv1.PruneResponse, error) {
	return c.system.Prune(ctx, &gantryv1.PruneRequest{All: all})
}

// Check verifies the store.
func (c *Client) Check(ctx context.Context) (*gantryv1.CheckResponse, error) {
	return c.system.Check(ctx, &gantryv1.CheckRequest{})
}

// Version returns the daemon's version.
func (c *Client) Version(ctx context.Context) (*gantryv1.VersionResponse, error) {
	return c.system.Version(ctx, &gantryv1.VersionRequest{})
}

// Info describes the daemon.
func (c *Client) Info(ctx context.Context) (*gantryv1.InfoResponse, error) {
	return c.system.Info(ctx, &gantryv1.InfoRequest{})
}
