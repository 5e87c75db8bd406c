package image

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/remote"
)

// Annotations naming an image in an OCI layout's index.json.
const (
	AnnotationRefName        = ocispec.AnnotationRefName // the tag
	AnnotationContainerdName = "io.containerd.image.name"
)

// dockerManifest is one entry of a docker-save manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Export writes the images names of ns as a tar of an OCI image layout
// (oci-layout, index.json, blobs/sha256/...) that also carries a docker-save
// manifest.json, so both `docker load` and OCI tools read it. An index
// whose other platforms were never pulled is exported as the manifest of the
// service's platform.
func (s *Service) Export(ctx context.Context, ns string, names []string, w io.Writer) error {
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	var idx ocispec.Index
	idx.SchemaVersion = 2
	idx.MediaType = ocispec.MediaTypeImageIndex
	var docker []dockerManifest
	for _, n := range names {
		img, err := s.get(ctx, ns, n)
		if err != nil {
			return fmt.Errorf("export %s: %w", n, err)
		}
		r, err := resolve(ctx, s.Content, img.Target, s.platform())
		if err != nil {
			return fmt.Errorf("export %s: %w", img.Name, err)
		}
		target := img.Target
		blobs := r.Blobs()
		if len(r.Indexes) > 0 && !s.complete(ctx, r) {
			target = r.Manifest
			blobs = blobs[len(r.Indexes):]
		}
		for _, b := range uniq(blobs) {
			if written[b] {
				continue
			}
			if err := s.writeBlob(ctx, tw, b); err != nil {
				return fmt.Errorf("export %s: %w", img.Name, err)
			}
			written[b] = true
		}
		target.Annotations = map[string]string{AnnotationContainerdName: img.Name}
		if tag := tagOf(img.Name); tag != "" {
			target.Annotations[AnnotationRefName] = tag
		}
		idx.Manifests = append(idx.Manifests, target)
		dm := dockerManifest{Config: blobPath(r.Parsed.Config.Digest)}
		if tagOf(img.Name) != "" {
			dm.RepoTags = []string{img.Name}
		}
		for _, l := range r.Parsed.Layers {
			dm.Layers = append(dm.Layers, blobPath(l.Digest))
		}
		docker = append(docker, dm)
	}
	for _, f := range []struct {
		name string
		v    any
	}{
		{ocispec.ImageLayoutFile, ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion}},
		{"index.json", idx},
		{"manifest.json", docker},
	} {
		b, err := json.Marshal(f.v)
		if err != nil {
			return err
		}
		if err := writeTarFile(tw, f.name, b); err != nil {
			return fmt.Errorf("export: %w", err)
		}
	}
	return tw.Close()
}

// complete reports whether every manifest, config and layer under r's
// target is in the store: an index is exported whole only then.
func (s *Service) complete(ctx context.Context, r *Resolved) bool {
	var walk func(d ocispec.Descriptor, depth int) bool
	walk = func(d ocispec.Descriptor, depth int) bool {
		if depth > 4 {
			return false
		}
		b, err := s.Content.ReadAll(ctx, d.Digest, remote.MaxManifestSize)
		if err != nil {
			return false
		}
		if remote.IsIndex(d.MediaType) {
			var idx ocispec.Index
			if json.Unmarshal(b, &idx) != nil {
				return false
			}
			for _, m := range idx.Manifests {
				if !walk(m, depth+1) {
					return false
				}
			}
			return true
		}
		var m ocispec.Manifest
		if json.Unmarshal(b, &m) != nil {
			return false
		}
		for _, l := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
			if _, err := s.Content.Info(ctx, l.Digest); err != nil {
				return false
			}
		}
		return true
	}
	return walk(r.Target, 0)
}

func blobPath(d digest.Digest) string {
	return path.Join("blobs", d.Algorithm().String(), d.Encoded())
}

func (s *Service) writeBlob(ctx context.Context, tw *tar.Writer, d digest.Digest) error {
	info, err := s.Content.Info(ctx, d)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	f, err := s.Content.Open(ctx, d)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: blobPath(d), Typeflag: tar.TypeReg, Mode: 0o444, Size: info.Size, ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	if n, err := io.Copy(tw, f); err != nil || n != info.Size {
		return fmt.Errorf("blob %s: copied %d of %d bytes: %v: %w", d, n, info.Size, err, errdefs.ErrFailedPrecondition)
	}
	return nil
}

func writeTarFile(tw *tar.Writer, name string, b []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(b)), ModTime: time.Unix(0, 0)}); err != nil {
		return err
	}
	_, err := tw.Write(b)
	return err
}
