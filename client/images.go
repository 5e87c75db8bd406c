package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// PullOptions configure a pull.
type PullOptions struct {
	// Platform overrides the daemon's platform.
	Platform *gantryv1.Platform
	// Progress receives every progress event in order; it runs on the
	// calling goroutine.
	Progress func(*gantryv1.PullResponse)
}

// Pull pulls ref into the client's namespace and returns the image.
func (c *Client) Pull(ctx context.Context, ref string, opts PullOptions) (*gantryv1.Image, error) {
	stream, err := c.images.Pull(ctx, &gantryv1.PullRequest{Ref: ref, Platform: opts.Platform})
	if err != nil {
		return nil, err
	}
	var img *gantryv1.Image
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		if i := msg.GetImage(); i != nil {
			img = i
			continue
		}
		if opts.Progress != nil {
			opts.Progress(msg)
		}
	}
	if img == nil {
		return nil, fmt.Errorf("pull %s: the stream ended without an image", ref)
	}
	return img, nil
}

// ListImages lists the images of the namespace.
func (c *Client) ListImages(ctx context.Context) ([]*gantryv1.Image, error) {
	resp, err := c.images.List(ctx, &gantryv1.ListImagesRequest{})
	if err != nil {
		return nil, err
	}
	return resp.GetImages(), nil
}

// GetImage returns an image with its manifest and config.
func (c *Client) GetImage(ctx context.Context, name string) (*gantryv1.GetImageResponse, error) {
	return c.images.Get(ctx, &gantryv1.GetImageRequest{Name: name})
}

// DeleteImage removes the name and returns the bytes the garbage collection
// after it freed. While a container uses the name (it was created from it,
// or it is the last name of the container's image) gantryd refuses, with
// an error of kind ErrFailedPrecondition naming the container.
func (c *Client) DeleteImage(ctx context.Context, name string) (int64, error) {
	return c.deleteImage(ctx, &gantryv1.DeleteImageRequest{Name: name})
}

// ForceDeleteImage removes the name as DeleteImage does, even while
// containers use it (docker's rmi -f): they keep their snapshots and
// still start; the rest is collected as usual.
func (c *Client) ForceDeleteImage(ctx context.Context, name string) (int64, error) {
	return c.deleteImage(ctx, &gantryv1.DeleteImageRequest{Name: name, Force: true})
}

func (c *Client) deleteImage(ctx context.Context, req *gantryv1.DeleteImageRequest) (int64, error) {
	resp, err := c.images.Delete(ctx, req)
	if err != nil {
		return 0, err
	}
	return resp.GetReclaimedBytes(), nil
}

// TagImage names the image source also target.
func (c *Client) TagImage(ctx context.Context, source, target string) (*gantryv1.Image, error) {
	resp, err := c.images.Tag(ctx, &gantryv1.TagImageRequest{Source: source, Target: target})
	if err != nil {
		return nil, err
	}
	return resp.GetImage(), nil
}

// ImportImages sends an OCI image layout or docker-save tar read from r;
// name is given to an image the tar does not name.
func (c *Client) ImportImages(ctx context.Context, r io.Reader, name string) ([]*gantryv1.Image, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.images.Import(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&gantryv1.ImportRequest{Part: &gantryv1.ImportRequest_Header{Header: &gantryv1.ImportHeader{Name: name}}}); err != nil {
		return nil, c.importSendErr(stream, err)
	}
	buf := make([]byte, 1<<20)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			chunk := append([]byte(nil), buf[:n]...)
			if err := stream.Send(&gantryv1.ImportRequest{Part: &gantryv1.ImportRequest_Chunk{Chunk: chunk}}); err != nil {
				return nil, c.importSendErr(stream, err)
			}
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, fmt.Errorf("import: read tar: %w", rerr)
		}
	}
	resp, err := stream.CloseAndRecv()
	if err != nil {
		return nil, err
	}
	return resp.GetImages(), nil
}

// importSendErr returns the daemon's reason when a Send fails because the
// server ended the stream (gRPC reports io.EOF from Send then).
func (c *Client) importSendErr(stream gantryv1.ImageService_ImportClient, err error) error {
	if errors.Is(err, io.EOF) {
		if _, rerr := stream.CloseAndRecv(); rerr != nil {
			return rerr
		}
	}
	return err
}

// ExportImages writes the named images to w as one tar, format "oci" (the
// default) or "docker".
func (c *Client) ExportImages(ctx context.Context, names []string, format string, w io.Writer) error {
	stream, err := c.images.Export(ctx, &gantryv1.ExportRequest{Names: names, Format: format})
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
		if _, err := w.Write(msg.GetChunk()); err != nil {
			return fmt.Errorf("export: write: %w", err)
		}
	}
}
