package image

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/unpack"
)

// Service runs image operations. Its fields are set once by the daemon.
type Service struct {
	DB          *metadata.DB
	Content     *content.Store
	Snapshotter snapshot.Snapshotter
	// Platform picked from indexes on import, inspect and export; the zero
	// value means the host's.
	Platform ocispec.Platform
	// UnpackLimits bound what layers may expand to on pull and import
	// (the zero value: unpack's defaults).
	UnpackLimits unpack.Limits
}

// New returns a Service over db, cs and sn.
func New(db *metadata.DB, cs *content.Store, sn snapshot.Snapshotter) *Service {
	return &Service{DB: db, Content: cs, Snapshotter: sn}
}

func (s *Service) platform() ocispec.Platform {
	if s.Platform.OS == "" {
		return remote.DefaultPlatform()
	}
	return s.Platform
}

// NormalizeName returns the canonical name of ref ("busybox" ->
// "docker.io/library/busybox:latest").
func NormalizeName(ref string) (string, error) {
	r, err := remote.ParseReference(ref)
	if err != nil {
		return "", err
	}
	return r.String(), nil
}

// newLeaseID names a lease of this process: "<prefix>-<owner>-<random>"
// (RecoverLeases tells a killed process's leases by the owner).
func newLeaseID(prefix string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return prefix + "-" + processLeaseOwner + "-" + hex.EncodeToString(b)
}

// chainIDs returns the snapshot names unpack commits for diffIDs.
func chainIDs(diffIDs []digest.Digest) []string {
	var out []string
	for _, c := range unpack.ChainIDs(diffIDs) {
		out = append(out, string(c))
	}
	return out
}

// Resolved is an image's target followed down to one platform's manifest.
type Resolved struct {
	Target   ocispec.Descriptor
	Manifest ocispec.Descriptor
	// Indexes on the way from Target to Manifest (Target first), if any.
	Indexes  []ocispec.Descriptor
	Parsed   ocispec.Manifest
	Config   ocispec.Image
	ChainIDs []string
}

// Blobs lists every blob digest of r (indexes, manifest, config, layers).
func (r *Resolved) Blobs() []digest.Digest {
	var out []digest.Digest
	for _, d := range r.Indexes {
		out = append(out, d.Digest)
	}
	out = append(out, r.Manifest.Digest, r.Parsed.Config.Digest)
	for _, l := range r.Parsed.Layers {
		out = append(out, l.Digest)
	}
	return out
}

// resolve follows target through the indexes in the store to the manifest
// for platform p, and reads the manifest and config. Each document must be
// of the kind its descriptor says (remote.DocumentType): a stored blob, as
// one from an imported layout, is not interpreted by the descriptor alone.
func resolve(ctx context.Context, cs *content.Store, target ocispec.Descriptor, p ocispec.Platform) (*Resolved, error) {
	r := &Resolved{Target: target}
	desc := target
	for depth := 0; remote.IsIndex(desc.MediaType); depth++ {
		if depth > 3 {
			return nil, fmt.Errorf("index %s: nested more than 3 deep: %w", desc.Digest, errdefs.ErrInvalidArgument)
		}
		b, err := cs.ReadAll(ctx, desc.Digest, remote.MaxManifestSize)
		if err != nil {
			return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		if _, err := remote.DocumentType(b, desc.MediaType); err != nil {
			return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("parse index %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
		}
		r.Indexes = append(r.Indexes, desc)
		child, err := remote.SelectPlatform(idx, p)
		if err != nil {
			// An index of one manifest without a platform (some layouts).
			if len(idx.Manifests) == 1 && idx.Manifests[0].Platform == nil {
				child = idx.Manifests[0]
			} else {
				return nil, fmt.Errorf("index %s: %w", desc.Digest, err)
			}
		}
		desc = child
	}
	if !remote.IsManifest(desc.MediaType) {
		return nil, fmt.Errorf("manifest %s: media type %q unsupported: %w", desc.Digest, desc.MediaType, errdefs.ErrNotImplemented)
	}
	r.Manifest = desc
	b, err := cs.ReadAll(ctx, desc.Digest, remote.MaxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if _, err := remote.DocumentType(b, desc.MediaType); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	if err := json.Unmarshal(b, &r.Parsed); err != nil {
		return nil, fmt.Errorf("parse manifest %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	cb, err := cs.ReadAll(ctx, r.Parsed.Config.Digest, remote.MaxConfigSize)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", r.Parsed.Config.Digest, err)
	}
	if err := json.Unmarshal(cb, &r.Config); err != nil {
		return nil, fmt.Errorf("parse config %s: %w: %w", r.Parsed.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	r.ChainIDs = chainIDs(r.Config.RootFS.DiffIDs)
	return r, nil
}

// List returns the images of namespace ns.
func (s *Service) List(ctx context.Context, ns string) ([]metadata.Image, error) {
	return s.DB.ListImages(ctx, ns)
}

// Details is what Inspect tells about an image.
type Details struct {
	Image    metadata.Image
	Manifest ocispec.Descriptor
	Parsed   ocispec.Manifest
	Config   ocispec.Image
	// Size is the sum of the image's blobs in the store.
	Size int64
}

// Inspect returns the image name (normalized) of ns with its manifest and
// config for the service's platform.
func (s *Service) Inspect(ctx context.Context, ns, name string) (Details, error) {
	img, err := s.get(ctx, ns, name)
	if err != nil {
		return Details{}, err
	}
	r, err := resolve(ctx, s.Content, img.Target, s.platform())
	if err != nil {
		return Details{}, fmt.Errorf("inspect %s: %w", img.Name, err)
	}
	d := Details{Image: img, Manifest: r.Manifest, Parsed: r.Parsed, Config: r.Config}
	for _, b := range uniq(img.Blobs) {
		if info, err := s.Content.Info(ctx, b); err == nil {
			d.Size += info.Size
		}
	}
	return d, nil
}

// get finds name as given, else normalized.
func (s *Service) get(ctx context.Context, ns, name string) (metadata.Image, error) {
	img, err := s.DB.GetImage(ctx, ns, name)
	if err == nil || !errdefs.IsNotFound(err) {
		return img, err
	}
	if n, nerr := NormalizeName(name); nerr == nil && n != name {
		return s.DB.GetImage(ctx, ns, n)
	}
	return img, err
}

// putImage records img, and when it replaces an image of the same name
// with another target (a pull or import of a newer image, a tag moved),
// collects what the old one alone referenced, as Remove does: otherwise
// its blobs and snapshots would stay until `gantry system prune`, and
// `gantry system check` would report them after an ordinary command.
func (s *Service) putImage(ctx context.Context, ns string, img metadata.Image) error {
	prev, err := s.DB.GetImage(ctx, ns, img.Name)
	replaced := err == nil && prev.Target.Digest != img.Target.Digest
	if err := s.DB.PutImage(ctx, ns, img); err != nil {
		return err
	}
	if replaced {
		if _, err := s.DB.GarbageCollect(ctx, s.Content, s.Snapshotter, false); err != nil {
			return fmt.Errorf("collect what the image it replaced referenced: %w", err)
		}
	}
	return nil
}

// Tag makes dst name the same image as src.
func (s *Service) Tag(ctx context.Context, ns, src, dst string) (metadata.Image, error) {
	img, err := s.get(ctx, ns, src)
	if err != nil {
		return metadata.Image{}, fmt.Errorf("tag %s: %w", src, err)
	}
	name, err := NormalizeName(dst)
	if err != nil {
		return metadata.Image{}, fmt.Errorf("tag %s as %s: %w", src, dst, err)
	}
	img.Name = name
	if err := s.putImage(ctx, ns, img); err != nil {
		return metadata.Image{}, fmt.Errorf("tag %s as %s: %w", src, name, err)
	}
	return s.DB.GetImage(ctx, ns, name)
}

// RemoveOptions configure Remove.
type RemoveOptions struct {
	// Force removes the name even while a container uses it. The
	// container keeps running and starting: garbage collection keeps its
	// snapshot and every parent of it.
	Force bool
}

// Remove deletes the image name and collects what nothing else references.
// Without o.Force it refuses, with an error of kind ErrFailedPrecondition
// naming the containers, while a container of ns uses the name (see
// metadata.DB.DeleteUnusedImage), as docker's rmi does.
func (s *Service) Remove(ctx context.Context, ns, name string, o RemoveOptions) (metadata.GCReport, error) {
	img, err := s.get(ctx, ns, name)
	if err != nil {
		return metadata.GCReport{}, fmt.Errorf("remove %s: %w", name, err)
	}
	del := s.DB.DeleteUnusedImage
	if o.Force {
		del = s.DB.DeleteImage
	}
	if err := del(ctx, ns, img.Name); err != nil {
		var inUse *metadata.ImageInUseError
		if errors.As(err, &inUse) {
			// The name as the user gave it, as docker's message.
			return metadata.GCReport{}, fmt.Errorf("remove image %q: %w", name, err)
		}
		return metadata.GCReport{}, fmt.Errorf("remove %s: %w", img.Name, err)
	}
	if err := s.RecoverLeases(ctx); err != nil {
		return metadata.GCReport{}, fmt.Errorf("remove %s: %w", img.Name, err)
	}
	rep, err := s.DB.GarbageCollect(ctx, s.Content, s.Snapshotter, false)
	if err != nil {
		return rep, fmt.Errorf("remove %s: garbage collect: %w", img.Name, err)
	}
	return rep, nil
}

func uniq[T comparable](in []T) []T {
	seen := map[T]bool{}
	var out []T
	for _, v := range in {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// tagOf returns the tag part of a normalized name ("" if none).
func tagOf(name string) string {
	n, _, _ := strings.Cut(name, "@")
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		return n[i+1:]
	}
	return ""
}
