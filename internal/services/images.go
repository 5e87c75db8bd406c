package services

import (
	"context"
	"fmt"
	"io"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// chunkSize bounds the data in one streamed message (gRPC's default limit
// is 4 MiB).
const chunkSize = 1 << 20

type imageServer struct {
	gantryv1.UnimplementedImageServiceServer
	images Images
}

func required(field, value string) error {
	if value == "" {
		return fmt.Errorf("%s: required: %w", field, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Pull runs the pull in its own goroutine and forwards its events, in
// order, from this one. Intermediate progress is dropped when the client
// reads slower than the pull goes; stages and final blob states never are.
func (s *imageServer) Pull(req *gantryv1.PullRequest, stream gantryv1.ImageService_PullServer) error {
	if err := required("ref", req.GetRef()); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(stream.Context())
	defer cancel()
	var platform *ocispec.Platform
	if p := req.GetPlatform(); p != nil && p.GetOs() != "" {
		platform = &ocispec.Platform{OS: p.GetOs(), Architecture: p.GetArchitecture(), Variant: p.GetVariant()}
	}

	events := make(chan PullEvent, 256)
	type result struct {
		img Image
		err error
	}
	res := make(chan result, 1)
	go func() {
		img, err := s.images.Pull(ctx, Namespace(ctx), req.GetRef(), platform, func(ev PullEvent) {
			final := ev.Progress == nil || ev.Progress.Done || ev.Progress.Exists || ev.Progress.Err != nil
			if !final {
				select {
				case events <- ev:
				default:
				}
				return
			}
			select {
			case events <- ev:
			case <-ctx.Done():
			}
		})
		close(events)
		res <- result{img, err}
	}()

	var sendErr error
	for ev := range events {
		if sendErr != nil {
			continue // drain so that the pull can finish
		}
		msg := &gantryv1.PullResponse{}
		if ev.Progress != nil {
			msg.Event = &gantryv1.PullResponse_Progress{Progress: progressToAPI(*ev.Progress)}
		} else {
			msg.Event = &gantryv1.PullResponse_Stage{Stage: ev.Stage}
		}
		if sendErr = stream.Send(msg); sendErr != nil {
			cancel()
		}
	}
	r := <-res
	if r.err != nil {
		return r.err
	}
	if sendErr != nil {
		return sendErr
	}
	return stream.Send(&gantryv1.PullResponse{Event: &gantryv1.PullResponse_Image{Image: imageToAPI(r.img)}})
}

func (s *imageServer) List(ctx context.Context, _ *gantryv1.ListImagesRequest) (*gantryv1.ListImagesResponse, error) {
	imgs, err := s.images.List(ctx, Namespace(ctx))
	if err != nil {
		return nil, err
	}
	return &gantryv1.ListImagesResponse{Images: imagesToAPI(imgs)}, nil
}

func (s *imageServer) Get(ctx context.Context, req *gantryv1.GetImageRequest) (*gantryv1.GetImageResponse, error) {
	if err := required("name", req.GetName()); err != nil {
		return nil, err
	}
	d, err := s.images.Get(ctx, Namespace(ctx), req.GetName())
	if err != nil {
		return nil, err
	}
	return &gantryv1.GetImageResponse{
		Image:              imageToAPI(d.Image),
		Manifest:           d.Manifest,
		Config:             d.Config,
		ManifestDescriptor: descriptorToAPI(d.ManifestDescriptor),
	}, nil
}

func (s *imageServer) Delete(ctx context.Context, req *gantryv1.DeleteImageRequest) (*gantryv1.DeleteImageResponse, error) {
	if err := required("name", req.GetName()); err != nil {
		return nil, err
	}
	n, err := s.images.Delete(ctx, Namespace(ctx), req.GetName(), req.GetForce())
	if err != nil {
		return nil, err
	}
	return &gantryv1.DeleteImageResponse{ReclaimedBytes: n}, nil
}

func (s *imageServer) Tag(ctx context.Context, req *gantryv1.TagImageRequest) (*gantryv1.TagImageResponse, error) {
	if err := required("source", req.GetSource()); err != nil {
		return nil, err
	}
	if err := required("target", req.GetTarget()); err != nil {
		return nil, err
	}
	img, err := s.images.Tag(ctx, Namespace(ctx), req.GetSource(), req.GetTarget())
	if err != nil {
		return nil, err
	}
	return &gantryv1.TagImageResponse{Image: imageToAPI(img)}, nil
}

// importReader reads the chunks of an Import stream as one byte stream.
type importReader struct {
	stream gantryv1.ImageService_ImportServer
	buf    []byte
}

func (r *importReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		msg, err := r.stream.Recv()
		if err != nil {
			return 0, err // io.EOF at the end of the stream
		}
		if msg.GetHeader() != nil {
			return 0, fmt.Errorf("import: a second header in the stream: %w", errdefs.ErrInvalidArgument)
		}
		r.buf = msg.GetChunk()
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

func (s *imageServer) Import(stream gantryv1.ImageService_ImportServer) error {
	first, err := stream.Recv()
	if err != nil {
		return fmt.Errorf("import: read header: %w", err)
	}
	if first.GetHeader() == nil {
		return fmt.Errorf("import: the first message must be the header: %w", errdefs.ErrInvalidArgument)
	}
	ctx := stream.Context()
	imgs, err := s.images.Import(ctx, Namespace(ctx), &importReader{stream: stream}, first.GetHeader().GetName())
	if err != nil {
		return err
	}
	return stream.SendAndClose(&gantryv1.ImportResponse{Images: imagesToAPI(imgs)})
}

// chunkWriter sends what is written to it as ExportResponse chunks.
type chunkWriter struct {
	send func([]byte) error
}

func (w chunkWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		n := min(len(p), chunkSize)
		if err := w.send(p[:n]); err != nil {
			return written, err
		}
		written += n
		p = p[n:]
	}
	return written, nil
}

var _ io.Writer = chunkWriter{}

func (s *imageServer) Export(req *gantryv1.ExportRequest, stream gantryv1.ImageService_ExportServer) error {
	if len(req.GetNames()) == 0 {
		return fmt.Errorf("names: at least one image: %w", errdefs.ErrInvalidArgument)
	}
	format := req.GetFormat()
	switch format {
	case "":
		format = "oci"
	case "oci", "docker":
	default:
		return fmt.Errorf("format %q: want oci or docker: %w", format, errdefs.ErrInvalidArgument)
	}
	ctx := stream.Context()
	w := chunkWriter{send: func(b []byte) error {
		// Send may keep b after it returns, so it gets its own copy.
		return stream.Send(&gantryv1.ExportResponse{Chunk: append([]byte(nil), b...)})
	}}
	return s.images.Export(ctx, Namespace(ctx), req.GetNames(), format, w)
}
