package services

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
)

type contentServer struct {
	gantryv1.UnimplementedContentServiceServer
	content Content
}

func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", fmt.Errorf("digest %q: %v: %w", s, err, errdefs.ErrInvalidArgument)
	}
	return d, nil
}

func contentInfoToAPI(i content.Info) *gantryv1.ContentInfo {
	return &gantryv1.ContentInfo{Digest: i.Digest.String(), Size: i.Size, CreatedAt: timestamp(i.CreatedAt)}
}

func (s *contentServer) List(ctx context.Context, _ *gantryv1.ListContentRequest) (*gantryv1.ListContentResponse, error) {
	var out []*gantryv1.ContentInfo
	err := s.content.Walk(ctx, func(i content.Info) error {
		out = append(out, contentInfoToAPI(i))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &gantryv1.ListContentResponse{Blobs: out}, nil
}

func (s *contentServer) Info(ctx context.Context, req *gantryv1.ContentInfoRequest) (*gantryv1.ContentInfoResponse, error) {
	d, err := parseDigest(req.GetDigest())
	if err != nil {
		return nil, err
	}
	info, err := s.content.Info(ctx, d)
	if err != nil {
		return nil, err
	}
	return &gantryv1.ContentInfoResponse{Info: contentInfoToAPI(info)}, nil
}

func (s *contentServer) Read(req *gantryv1.ReadContentRequest, stream gantryv1.ContentService_ReadServer) error {
	d, err := parseDigest(req.GetDigest())
	if err != nil {
		return err
	}
	if req.GetOffset() < 0 || req.GetSize() < 0 {
		return fmt.Errorf("read %s: offset %d, size %d: negative: %w", d, req.GetOffset(), req.GetSize(), errdefs.ErrInvalidArgument)
	}
	f, err := s.content.Open(stream.Context(), d)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = io.NewSectionReader(f, req.GetOffset(), 1<<62)
	if req.GetSize() > 0 {
		r = io.LimitReader(r, req.GetSize())
	}
	buf := make([]byte, chunkSize)
	off := req.GetOffset()
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if serr := stream.Send(&gantryv1.ReadContentResponse{Offset: off, Data: buf[:n]}); serr != nil {
				return serr
			}
			off += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read blob %s: %w", d, err)
		}
	}
}
