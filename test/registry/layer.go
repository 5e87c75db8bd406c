package registry

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Compression of a layer blob.
type Compression int

// The compressions NewLayer knows.
const (
	Gzip Compression = iota
	Zstd
	Uncompressed
)

// Media types of layers (OCI, and Docker schema 2 for gzip), manifests,
// configs and indexes.
const (
	MediaTypeOCILayerGzip       = ocispec.MediaTypeImageLayerGzip
	MediaTypeOCILayerZstd       = ocispec.MediaTypeImageLayerZstd
	MediaTypeOCILayer           = ocispec.MediaTypeImageLayer
	MediaTypeOCIManifest        = ocispec.MediaTypeImageManifest
	MediaTypeOCIConfig          = ocispec.MediaTypeImageConfig
	MediaTypeOCIIndex           = ocispec.MediaTypeImageIndex
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// Epoch is the mtime of every entry the builders write, so the same input
// gives the same digests.
var Epoch = time.Unix(1700000000, 0).UTC()

// File is one tar entry of a layer. Type is a tar typeflag (tar.TypeReg when
// zero); Mode holds the permission bits (0644 for files, 0755 for
// directories when zero).
type File struct {
	Name     string
	Type     byte
	Mode     int64
	Data     []byte
	Linkname string
	UID, GID int
	Devmajor int64
	Devminor int64
	Xattrs   map[string]string
}

// Tar returns the tar stream of files, in order.
func Tar(files []File) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{
			Name:     f.Name,
			Typeflag: f.Type,
			Mode:     f.Mode,
			Linkname: f.Linkname,
			Uid:      f.UID,
			Gid:      f.GID,
			Devmajor: f.Devmajor,
			Devminor: f.Devminor,
			ModTime:  Epoch,
			Format:   tar.FormatPAX,
		}
		if hdr.Typeflag == 0 {
			hdr.Typeflag = tar.TypeReg
		}
		if hdr.Mode == 0 {
			hdr.Mode = 0o644
			if hdr.Typeflag == tar.TypeDir {
				hdr.Mode = 0o755
			}
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(f.Data))
		}
		if len(f.Xattrs) > 0 {
			hdr.PAXRecords = map[string]string{}
			for k, v := range f.Xattrs {
				hdr.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("tar entry %q: %w", f.Name, err)
		}
		if hdr.Typeflag == tar.TypeReg {
			if _, err := tw.Write(f.Data); err != nil {
				return nil, fmt.Errorf("tar entry %q: %w", f.Name, err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Layer is a layer blob with what a manifest and a config say of it. A
// layer from NewLayer or LayerFromTar is held in memory; one from
// RandomLayer is generated again on each read.
type Layer struct {
	// MediaType is the layer's media type in the manifest.
	MediaType string
	// Digest and Size are those of the (compressed) blob.
	Digest digest.Digest
	Size   int64
	// DiffID is the digest of the uncompressed tar stream.
	DiffID digest.Digest

	blob, tar []byte
	gen       func() io.Reader // set for a generated, uncompressed layer
}

// Descriptor is the manifest's descriptor of the layer.
func (l *Layer) Descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size}
}

// Compressed opens the layer blob as the registry stores it.
func (l *Layer) Compressed() (io.ReadCloser, error) {
	if l.gen != nil {
		return io.NopCloser(l.gen()), nil
	}
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}

// Uncompressed opens the layer's tar stream.
func (l *Layer) Uncompressed() (io.ReadCloser, error) {
	if l.gen != nil {
		return io.NopCloser(l.gen()), nil
	}
	return io.NopCloser(bytes.NewReader(l.tar)), nil
}

// NewLayer builds a layer of files with the compression c and the OCI media
// type for it.
func NewLayer(files []File, c Compression) (*Layer, error) {
	tarball, err := Tar(files)
	if err != nil {
		return nil, err
	}
	return LayerFromTar(tarball, c)
}

// LayerFromTar compresses a tar stream into a layer.
func LayerFromTar(tarball []byte, c Compression) (*Layer, error) {
	var blob bytes.Buffer
	var mt string
	switch c {
	case Gzip:
		mt = MediaTypeOCILayerGzip
		zw := gzip.NewWriter(&blob)
		if _, err := zw.Write(tarball); err != nil {
			return nil, fmt.Errorf("gzip layer: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("gzip layer: %w", err)
		}
	case Zstd:
		mt = MediaTypeOCILayerZstd
		zw, err := zstd.NewWriter(&blob)
		if err != nil {
			return nil, fmt.Errorf("zstd layer: %w", err)
		}
		if _, err := zw.Write(tarball); err != nil {
			return nil, fmt.Errorf("zstd layer: %w", err)
		}
		if err := zw.Close(); err != nil {
			return nil, fmt.Errorf("zstd layer: %w", err)
		}
	case Uncompressed:
		mt = MediaTypeOCILayer
		blob.Write(tarball)
	default:
		return nil, fmt.Errorf("compression %d: unknown", c)
	}
	return &Layer{
		MediaType: mt,
		Digest:    digest.FromBytes(blob.Bytes()),
		Size:      int64(blob.Len()),
		DiffID:    digest.FromBytes(tarball),
		blob:      blob.Bytes(),
		tar:       tarball,
	}, nil
}

// WithMediaType returns a copy of l with another media type (for Docker
// schema 2 images, or for a deliberately wrong one).
func WithMediaType(l *Layer, mt string) *Layer {
	m := *l
	m.MediaType = mt
	return &m
}

// RandomLayer returns an uncompressed layer holding one file /large.bin of
// size bytes of incompressible data from seed; it is generated again on each
// read and never held in memory.
func RandomLayer(size int64, seed uint64) (*Layer, error) {
	gen := func() io.Reader {
		pr, pw := io.Pipe()
		go func() {
			tw := tar.NewWriter(pw)
			err := tw.WriteHeader(&tar.Header{Name: "large.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: size, ModTime: Epoch, Format: tar.FormatPAX})
			if err == nil {
				_, err = io.CopyN(tw, rand.NewChaCha8(seedBytes(seed)), size)
			}
			if err == nil {
				err = tw.Close()
			}
			pw.CloseWithError(err)
		}()
		return pr
	}
	dg := digest.SHA256.Digester()
	n, err := io.Copy(dg.Hash(), gen())
	if err != nil {
		return nil, fmt.Errorf("generate random layer: %w", err)
	}
	return &Layer{MediaType: MediaTypeOCILayer, Digest: dg.Digest(), Size: n, DiffID: dg.Digest(), gen: gen}, nil
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := 0; i < 8; i++ {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}
