package services

import (
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/types/known/timestamppb"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

func timestamp(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}

func descriptorToAPI(d ocispec.Descriptor) *gantryv1.Descriptor {
	out := &gantryv1.Descriptor{
		MediaType:   d.MediaType,
		Digest:      d.Digest.String(),
		Size:        d.Size,
		Annotations: d.Annotations,
	}
	if d.Platform != nil {
		out.Platform = &gantryv1.Platform{Os: d.Platform.OS, Architecture: d.Platform.Architecture, Variant: d.Platform.Variant}
	}
	return out
}

func imageToAPI(img Image) *gantryv1.Image {
	return &gantryv1.Image{
		Name:      img.Name,
		Target:    descriptorToAPI(img.Target),
		CreatedAt: timestamp(img.CreatedAt),
		UpdatedAt: timestamp(img.UpdatedAt),
		Labels:    img.Labels,
		Size:      img.Size,
	}
}

func imagesToAPI(imgs []Image) []*gantryv1.Image {
	out := make([]*gantryv1.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, imageToAPI(img))
	}
	return out
}

func progressToAPI(p Progress) *gantryv1.Progress {
	out := &gantryv1.Progress{Ref: p.Ref, Digest: p.Digest.String(), Total: p.Total, Offset: p.Offset}
	switch {
	case p.Err != nil:
		out.Status = gantryv1.ProgressStatus_PROGRESS_STATUS_ERROR
		out.Error = p.Err.Error()
	case p.Exists:
		out.Status = gantryv1.ProgressStatus_PROGRESS_STATUS_EXISTS
	case p.Done:
		out.Status = gantryv1.ProgressStatus_PROGRESS_STATUS_DONE
	case p.Offset == 0:
		out.Status = gantryv1.ProgressStatus_PROGRESS_STATUS_WAITING
	default:
		out.Status = gantryv1.ProgressStatus_PROGRESS_STATUS_DOWNLOADING
	}
	return out
}
