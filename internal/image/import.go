package image

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/unpack"
)

// ImportOptions tune Import.
type ImportOptions struct {
	// Name names images the archive leaves unnamed, and is the repository
	// of index.json entries whose ref.name is only a tag.
	Name string
}

// maxMetaFile bounds index.json, manifest.json and oci-layout.
const maxMetaFile = 4 << 20

// Import reads a tar of an OCI image layout (index.json, blobs/) or a
// docker-save tarball (manifest.json, with layer files anywhere) into the
// store, unpacks the images for the service's platform and records them in
// ns. Every blob is verified: a blobs/<alg>/<hex> file must hash to its
// name. It returns the images recorded.
func (s *Service) Import(ctx context.Context, ns string, r io.Reader, opts ImportOptions) (_ []metadata.Image, retErr error) {
	lease := newLeaseID("import")
	if err := s.DB.AddLease(ctx, lease, nil, nil); err != nil {
		return nil, fmt.Errorf("import: lease: %w", err)
	}
	defer func() {
		cctx := context.WithoutCancel(ctx)
		if err := s.DB.DeleteLease(cctx, lease); err != nil && retErr == nil {
			retErr = fmt.Errorf("import: release lease: %w", err)
		}
		if retErr != nil {
			if _, err := s.DB.GarbageCollect(cctx, s.Content, s.Snapshotter, false); err != nil {
				retErr = errors.Join(retErr, fmt.Errorf("import: garbage collect after failure: %w", err))
			}
		}
	}()
	files := map[string]ocispec.Descriptor{}
	meta := map[string][]byte{}
	tr := tar.NewReader(r)
	for n := 0; ; n++ {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("import: read archive: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		name := path.Clean(strings.TrimPrefix(hdr.Name, "./"))
		if sparse(hdr) {
			// A few bytes of archive would become as many zeros in the
			// content store as the entry claims; no image tool writes one.
			return nil, fmt.Errorf("import: %s: a sparse file (%d bytes claimed), which an image archive never holds: %w", name, hdr.Size, errdefs.ErrInvalidArgument)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		switch name {
		case "index.json", "manifest.json", ocispec.ImageLayoutFile, "repositories":
			b, err := io.ReadAll(io.LimitReader(tr, maxMetaFile+1))
			if err != nil {
				return nil, fmt.Errorf("import: read %s: %w", name, err)
			}
			if len(b) > maxMetaFile {
				return nil, fmt.Errorf("import: %s larger than %d bytes: %w", name, maxMetaFile, errdefs.ErrInvalidArgument)
			}
			meta[name] = b
			continue
		}
		var want digest.Digest
		if rest, ok := strings.CutPrefix(name, "blobs/"); ok {
			alg, enc, _ := strings.Cut(rest, "/")
			want = digest.NewDigestFromEncoded(digest.Algorithm(alg), enc)
			if err := want.Validate(); err != nil {
				return nil, fmt.Errorf("import: %s: not a digest: %w: %w", name, err, errdefs.ErrInvalidArgument)
			}
		}
		w, err := s.Content.Writer(ctx, fmt.Sprintf("%s-%d", lease, n), ocispec.Descriptor{Digest: want, Size: hdr.Size})
		if err != nil {
			return nil, fmt.Errorf("import: %s: %w", name, err)
		}
		if _, err := io.Copy(w, tr); err != nil {
			w.Close()
			return nil, fmt.Errorf("import: %s: %w", name, err)
		}
		got := w.Digest()
		if err := s.DB.AddLease(ctx, lease, []digest.Digest{got}, nil); err != nil {
			w.Close()
			return nil, fmt.Errorf("import: lease: %w", err)
		}
		if err := w.Commit(ctx); err != nil {
			return nil, fmt.Errorf("import: %s: %w", name, err)
		}
		files[name] = ocispec.Descriptor{Digest: got, Size: hdr.Size}
	}
	var todo []metadata.Image
	switch {
	case meta["index.json"] != nil:
		var idx ocispec.Index
		if err := json.Unmarshal(meta["index.json"], &idx); err != nil {
			return nil, fmt.Errorf("import: index.json: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		for i, d := range idx.Manifests {
			name := d.Annotations[AnnotationContainerdName]
			if name == "" {
				if ref := d.Annotations[AnnotationRefName]; ref != "" {
					name = ref
					if !strings.ContainsAny(ref, "/:@") && opts.Name != "" {
						name = opts.Name + ":" + ref
					}
				} else {
					name = opts.Name
				}
			}
			if name == "" {
				return nil, fmt.Errorf("import: index.json: manifests[%d] (%s) has no name: set one: %w", i, d.Digest, errdefs.ErrInvalidArgument)
			}
			n, err := NormalizeName(name)
			if err != nil {
				return nil, fmt.Errorf("import: index.json: manifests[%d]: %w", i, err)
			}
			todo = append(todo, metadata.Image{Name: n, Target: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}})
		}
	case meta["manifest.json"] != nil:
		var dms []dockerManifest
		if err := json.Unmarshal(meta["manifest.json"], &dms); err != nil {
			return nil, fmt.Errorf("import: manifest.json: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		for i, dm := range dms {
			target, err := s.dockerTarget(ctx, lease, files, dm)
			if err != nil {
				return nil, fmt.Errorf("import: manifest.json[%d]: %w", i, err)
			}
			names := dm.RepoTags
			if len(names) == 0 && opts.Name != "" {
				names = []string{opts.Name}
			}
			if len(names) == 0 {
				return nil, fmt.Errorf("import: manifest.json[%d] has no RepoTags: set a name: %w", i, errdefs.ErrInvalidArgument)
			}
			for _, nm := range names {
				n, err := NormalizeName(nm)
				if err != nil {
					return nil, fmt.Errorf("import: manifest.json[%d]: %w", i, err)
				}
				todo = append(todo, metadata.Image{Name: n, Target: target})
			}
		}
	default:
		return nil, fmt.Errorf("import: neither index.json nor manifest.json in the archive: %w", errdefs.ErrInvalidArgument)
	}
	var out []metadata.Image
	for _, img := range todo {
		r, err := resolve(ctx, s.Content, img.Target, s.platform())
		if err != nil {
			return nil, fmt.Errorf("import %s: %w", img.Name, err)
		}
		if err := s.DB.AddLease(ctx, lease, r.Blobs(), r.ChainIDs); err != nil {
			return nil, fmt.Errorf("import %s: lease: %w", img.Name, err)
		}
		// The extract-* snapshots are leased before they are prepared, as a
		// pull's: a collection during the import must not remove one.
		uopts := unpack.Options{Limits: s.UnpackLimits, Lease: func(lctx context.Context, key string) error {
			return s.DB.AddLease(lctx, lease, nil, []string{key})
		}}
		if _, err := unpack.UnpackFrom(ctx, s.Content, s.Snapshotter, r.Parsed, r.Config, uopts); err != nil {
			return nil, fmt.Errorf("import %s: unpack: %w", img.Name, err)
		}
		img.Blobs = uniq(append([]digest.Digest{img.Target.Digest}, r.Blobs()...))
		img.Snapshots = r.ChainIDs
		if err := s.putImage(ctx, ns, img); err != nil {
			return nil, fmt.Errorf("import %s: %w", img.Name, err)
		}
		got, err := s.DB.GetImage(ctx, ns, img.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, got)
	}
	return out, nil
}

// dockerTarget builds and stores a Docker schema 2 manifest for a
// docker-save entry whose config and layers were stored from files.
func (s *Service) dockerTarget(ctx context.Context, lease string, files map[string]ocispec.Descriptor, dm dockerManifest) (ocispec.Descriptor, error) {
	cfg, ok := files[path.Clean(dm.Config)]
	if !ok {
		return ocispec.Descriptor{}, fmt.Errorf("config %q not in the archive: %w", dm.Config, errdefs.ErrInvalidArgument)
	}
	m := ocispec.Manifest{MediaType: remote.MediaTypeDockerManifest}
	m.SchemaVersion = 2
	m.Config = ocispec.Descriptor{MediaType: remote.MediaTypeDockerConfig, Digest: cfg.Digest, Size: cfg.Size}
	for _, l := range dm.Layers {
		d, ok := files[path.Clean(l)]
		if !ok {
			return ocispec.Descriptor{}, fmt.Errorf("layer %q not in the archive: %w", l, errdefs.ErrInvalidArgument)
		}
		mt, err := s.sniffLayer(ctx, d.Digest)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("layer %q: %w", l, err)
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: d.Digest, Size: d.Size})
	}
	b, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{MediaType: remote.MediaTypeDockerManifest, Digest: digest.FromBytes(b), Size: int64(len(b))}
	if err := s.DB.AddLease(ctx, lease, []digest.Digest{desc.Digest}, nil); err != nil {
		return ocispec.Descriptor{}, err
	}
	w, err := s.Content.Writer(ctx, lease+"-manifest-"+desc.Digest.Encoded(), desc)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	defer w.Close()
	if w.Offset() > 0 {
		if err := w.Truncate(0); err != nil {
			return ocispec.Descriptor{}, err
		}
	}
	if _, err := w.Write(b); err != nil {
		return ocispec.Descriptor{}, err
	}
	return desc, w.Commit(ctx)
}

// sniffLayer picks a Docker layer media type from the blob's magic bytes.
func (s *Service) sniffLayer(ctx context.Context, d digest.Digest) (string, error) {
	f, err := s.Content.Open(ctx, d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return remote.MediaTypeDockerLayerGzip, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return remote.MediaTypeDockerLayerZstd, nil
	}
	return remote.MediaTypeDockerLayer, nil
}

// sparse tells whether hdr is a sparse file, in GNU's old format (type 'S')
// or in GNU's PAX formats (GNU.sparse.* records), which archive/tar reads
// as a regular file of the logical size.
func sparse(hdr *tar.Header) bool {
	if hdr.Typeflag == tar.TypeGNUSparse {
		return true
	}
	for k := range hdr.PAXRecords {
		if strings.HasPrefix(k, "GNU.sparse.") {
			return true
		}
	}
	return false
}
