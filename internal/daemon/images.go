package daemon

import (
	"context"
	"fmt"
	"io"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/image"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/services"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// maxDocumentSize bounds the manifest and config that inspect reads.
const maxDocumentSize = 4 << 20

// imageStore is the image service's backend plus its lifecycle.
type imageStore interface {
	services.Images
	Close() error
}

// images adapts internal/image to services.Images: it adds the registry
// options to every pull, turns remote progress into pull events and
// metadata records into API images with their sizes.
type images struct {
	svc    *image.Service
	cs     *content.Store
	remote remote.Options
}

func newImageStore(db *metadata.DB, cs *content.Store, sn snapshot.Snapshotter, ropts remote.Options) (imageStore, error) {
	svc := image.New(db, cs, sn)
	// What a gantryd killed during a pull leased goes to that pull's retry
	// lease now, not at the next Pull or Remove.
	if err := svc.RecoverLeases(context.Background()); err != nil {
		return nil, fmt.Errorf("recover the leases of interrupted pulls: %w", err)
	}
	return &images{svc: svc, cs: cs, remote: ropts}, nil
}

var _ services.Images = (*images)(nil)

func (i *images) Close() error { return nil }

// toImage adds the size of the image's blobs, as the store holds them.
func (i *images) toImage(ctx context.Context, img metadata.Image) services.Image {
	out := services.Image{Name: img.Name, Target: img.Target, CreatedAt: img.CreatedAt, UpdatedAt: img.UpdatedAt, Labels: img.Labels}
	seen := map[digest.Digest]bool{}
	for _, d := range append([]digest.Digest{img.Target.Digest}, img.Blobs...) {
		if seen[d] {
			continue
		}
		seen[d] = true
		if info, err := i.cs.Info(ctx, d); err == nil {
			out.Size += info.Size
		}
	}
	return out
}

func (i *images) Pull(ctx context.Context, ns, ref string, platform *ocispec.Platform, progress func(services.PullEvent)) (services.Image, error) {
	opts := i.remote
	if platform != nil {
		opts.Platform = *platform
	}
	opts.Progress = func(p remote.Progress) {
		progress(services.PullEvent{Progress: &services.Progress{
			Ref: p.Ref, Digest: p.Digest, Total: p.Total, Offset: p.Offset, Done: p.Done, Err: p.Err,
		}})
	}
	progress(services.PullEvent{Stage: "resolving " + ref})
	img, err := i.svc.Pull(ctx, ns, ref, opts)
	if err != nil {
		return services.Image{}, err
	}
	return i.toImage(ctx, img), nil
}

func (i *images) List(ctx context.Context, ns string) ([]services.Image, error) {
	imgs, err := i.svc.List(ctx, ns)
	if err != nil {
		return nil, err
	}
	out := make([]services.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, i.toImage(ctx, img))
	}
	return out, nil
}

func (i *images) Get(ctx context.Context, ns, name string) (services.ImageDetail, error) {
	d, err := i.svc.Inspect(ctx, ns, name)
	if err != nil {
		return services.ImageDetail{}, err
	}
	out := services.ImageDetail{Image: i.toImage(ctx, d.Image), ManifestDescriptor: d.Manifest}
	if out.Manifest, err = i.cs.ReadAll(ctx, d.Manifest.Digest, maxDocumentSize); err != nil {
		return services.ImageDetail{}, fmt.Errorf("inspect %s: manifest: %w", d.Image.Name, err)
	}
	if out.Config, err = i.cs.ReadAll(ctx, d.Parsed.Config.Digest, maxDocumentSize); err != nil {
		return services.ImageDetail{}, fmt.Errorf("inspect %s: config: %w", d.Image.Name, err)
	}
	return out, nil
}

// Delete removes the name, refused while a container uses it unless
// force.
func (i *images) Delete(ctx context.Context, ns, name string, force bool) (int64, error) {
	rep, err := i.svc.Remove(ctx, ns, name, image.RemoveOptions{Force: force})
	return rep.BytesFreed, err
}

func (i *images) Tag(ctx context.Context, ns, source, target string) (services.Image, error) {
	img, err := i.svc.Tag(ctx, ns, source, target)
	if err != nil {
		return services.Image{}, err
	}
	return i.toImage(ctx, img), nil
}

func (i *images) Import(ctx context.Context, ns string, r io.Reader, name string) ([]services.Image, error) {
	imgs, err := i.svc.Import(ctx, ns, r, image.ImportOptions{Name: name})
	if err != nil {
		return nil, err
	}
	out := make([]services.Image, 0, len(imgs))
	for _, img := range imgs {
		out = append(out, i.toImage(ctx, img))
	}
	return out, nil
}

// Export writes one tar that is both an OCI image layout and a docker-save
// archive (internal/image writes manifest.json beside index.json), so the
// two formats get the same bytes.
func (i *images) Export(ctx context.Context, ns string, names []string, format string, w io.Writer) error {
	switch format {
	case "oci", "docker":
		return i.svc.Export(ctx, ns, names, w)
	default:
		return fmt.Errorf("export format %q: want oci or docker: %w", format, errdefs.ErrInvalidArgument)
	}
}
