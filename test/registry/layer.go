package registry

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// Compression of a layer blob.
type Compression int

// The compressions NewLayer knows.
const (
	Gzip Compression = iota
	Zstd
	Uncompressed
)

// Layer media types (OCI, and Docker schema 2 for gzip).
const (
	MediaTypeOCILayerGzip   types.MediaType = "application/vnd.oci.image.layer.v1.tar+gzip"
	MediaTypeOCILayerZstd   types.MediaType = "application/vnd.oci.image.layer.v1.tar+zstd"
	MediaTypeOCILayer       types.MediaType = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeDockerLayer    types.MediaType = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerManifest types.MediaType = "application/vnd.docker.distribution.manifest.v2+json"
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

// memLayer is a layer held in memory.
type memLayer struct {
	blob, tar    []byte
	digest, diff v1.Hash
	mediaType    types.MediaType
}

// NewLayer builds a layer of files with the compression c and the OCI media
// type for it.
func NewLayer(files []File, c Compression) (v1.Layer, error) {
	tarball, err := Tar(files)
	if err != nil {
		return nil, err
	}
	return LayerFromTar(tarball, c)
}

// LayerFromTar compresses a tar stream into a layer.
func LayerFromTar(tarball []byte, c Compression) (v1.Layer, error) {
	var blob bytes.Buffer
	var mt types.MediaType
	switch c {
	case Gzip:
		mt = MediaTypeOCILayerGzip
		zw := gzip.NewWriter(&blob)
		if _, err := zw.Write(tarball); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case Zstd:
		mt = MediaTypeOCILayerZstd
		zw, err := zstd.NewWriter(&blob)
		if err != nil {
			return nil, err
		}
		if _, err := zw.Write(tarball); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
	case Uncompressed:
		mt = MediaTypeOCILayer
		blob.Write(tarball)
	default:
		return nil, fmt.Errorf("compression %d: unknown", c)
	}
	return &memLayer{
		blob:      blob.Bytes(),
		tar:       tarball,
		digest:    sha256Hash(blob.Bytes()),
		diff:      sha256Hash(tarball),
		mediaType: mt,
	}, nil
}

// WithMediaType returns l with another media type (for Docker schema 2
// images, or for a deliberately wrong one).
func WithMediaType(l v1.Layer, mt types.MediaType) v1.Layer {
	m := *(l.(*memLayer))
	m.mediaType = mt
	return &m
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", sum)}
}

func (l *memLayer) Digest() (v1.Hash, error) { return l.digest, nil }
func (l *memLayer) DiffID() (v1.Hash, error) { return l.diff, nil }
func (l *memLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.blob)), nil
}
func (l *memLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.tar)), nil
}
func (l *memLayer) Size() (int64, error)                { return int64(len(l.blob)), nil }
func (l *memLayer) MediaType() (types.MediaType, error) { return l.mediaType, nil }

// streamLayer is an uncompressed layer generated on the fly each time it is
// read (for layers too large to hold in memory).
type streamLayer struct {
	gen    func() io.Reader
	digest v1.Hash
	size   int64
}

// RandomLayer returns an uncompressed layer holding one file /large.bin of
// size bytes of incompressible data from seed; it is generated again on each
// read and never held in memory.
func RandomLayer(size int64, seed uint64) (v1.Layer, error) {
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
	h := sha256.New()
	n, err := io.Copy(h, gen())
	if err != nil {
		return nil, err
	}
	return &streamLayer{gen: gen, digest: hashOf(h), size: n}, nil
}

func seedBytes(seed uint64) [32]byte {
	var s [32]byte
	for i := 0; i < 8; i++ {
		s[i] = byte(seed >> (8 * i))
	}
	return s
}

func hashOf(h hash.Hash) v1.Hash {
	return v1.Hash{Algorithm: "sha256", Hex: fmt.Sprintf("%x", h.Sum(nil))}
}

func (l *streamLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *streamLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *streamLayer) Compressed() (io.ReadCloser, error)   { return io.NopCloser(l.gen()), nil }
func (l *streamLayer) Uncompressed() (io.ReadCloser, error) { return io.NopCloser(l.gen()), nil }
func (l *streamLayer) Size() (int64, error)                 { return l.size, nil }
func (l *streamLayer) MediaType() (types.MediaType, error)  { return MediaTypeOCILayer, nil }
