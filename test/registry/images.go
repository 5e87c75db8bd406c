package registry

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// BusyboxPath is the static busybox the busybox image carries (package
// busybox-static).
const BusyboxPath = "/bin/busybox"

// LargeEnv enables the large-layer image (LargeImage, PushLarge): set it to
// 1 in the end-to-end suite; unit runs skip it.
const LargeEnv = "GANTRY_TEST_LARGE"

// Platform of an image; the zero value is linux/amd64.
type Platform struct{ OS, Architecture, Variant string }

func (p Platform) String() string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// Image is an image manifest with its config and layers, as pushed: the
// JSON of manifest and config is fixed at build time, so Digest is the
// digest the registry reports.
type Image struct {
	// MediaType is the manifest's media type (OCI or Docker schema 2).
	MediaType string
	// Digest is the digest of ManifestJSON.
	Digest       digest.Digest
	Manifest     ocispec.Manifest
	ManifestJSON []byte
	Config       ocispec.Image
	ConfigJSON   []byte
	Layers       []*Layer
}

// Descriptor is the descriptor of the image's manifest.
func (img *Image) Descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: img.MediaType, Digest: img.Digest, Size: int64(len(img.ManifestJSON))}
}

// ConfigDigest is the digest of the config blob.
func (img *Image) ConfigDigest() digest.Digest { return img.Manifest.Config.Digest }

// NewImage assembles an OCI image (or a Docker schema 2 one with docker set)
// of layers for platform p, running cmd. With docker set, OCI gzip layers
// take the Docker layer media type.
func NewImage(p Platform, docker bool, cmd []string, layers ...*Layer) (*Image, error) {
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = "amd64"
	}
	created := Epoch
	cfg := ocispec.Image{
		Created:  &created,
		Platform: ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
		Config: ocispec.ImageConfig{
			Cmd:        cmd,
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
		},
		RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{}},
	}
	manifestType, configType := MediaTypeOCIManifest, MediaTypeOCIConfig
	if docker {
		manifestType, configType = MediaTypeDockerManifest, MediaTypeDockerConfig
	}
	ls := make([]*Layer, 0, len(layers))
	descs := make([]ocispec.Descriptor, 0, len(layers))
	for _, l := range layers {
		if docker && l.MediaType == MediaTypeOCILayerGzip {
			l = WithMediaType(l, MediaTypeDockerLayer)
		}
		ls = append(ls, l)
		descs = append(descs, l.Descriptor())
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.DiffID)
		cfg.History = append(cfg.History, ocispec.History{Created: &created, CreatedBy: "gantry test/registry"})
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("marshal image config: %w", err)
	}
	m := ocispec.Manifest{
		MediaType: manifestType,
		Config:    ocispec.Descriptor{MediaType: configType, Digest: digest.FromBytes(cfgJSON), Size: int64(len(cfgJSON))},
		Layers:    descs,
	}
	m.SchemaVersion = 2
	return finishImage(m, cfg, cfgJSON, ls)
}

func finishImage(m ocispec.Manifest, cfg ocispec.Image, cfgJSON []byte, layers []*Layer) (*Image, error) {
	mJSON, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("marshal manifest: %w", err)
	}
	return &Image{
		MediaType:    m.MediaType,
		Digest:       digest.FromBytes(mJSON),
		Manifest:     m,
		ManifestJSON: mJSON,
		Config:       cfg,
		ConfigJSON:   cfgJSON,
		Layers:       layers,
	}, nil
}

// WithConfigMediaType returns a copy of img whose manifest gives the config
// another media type (a Helm chart's, say); the config blob is the same.
func WithConfigMediaType(img *Image, mt string) (*Image, error) {
	m := img.Manifest
	m.Config.MediaType = mt
	return finishImage(m, img.Config, img.ConfigJSON, img.Layers)
}

// Index is an image index and the images it names, in order.
type Index struct {
	// MediaType is the index's media type.
	MediaType string
	// Digest is the digest of IndexJSON.
	Digest    digest.Digest
	Index     ocispec.Index
	IndexJSON []byte
	Images    []*Image
}

// Descriptor is the descriptor of the index.
func (idx *Index) Descriptor() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: idx.MediaType, Digest: idx.Digest, Size: int64(len(idx.IndexJSON))}
}

// NewIndex assembles an OCI index of images, each for the platform of its
// config.
func NewIndex(images ...*Image) (*Index, error) {
	ix := ocispec.Index{MediaType: MediaTypeOCIIndex, Manifests: []ocispec.Descriptor{}}
	ix.SchemaVersion = 2
	for _, img := range images {
		d := img.Descriptor()
		p := img.Config.Platform
		d.Platform = &ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
		ix.Manifests = append(ix.Manifests, d)
	}
	b, err := json.Marshal(ix)
	if err != nil {
		return nil, fmt.Errorf("marshal index: %w", err)
	}
	return &Index{MediaType: ix.MediaType, Digest: digest.FromBytes(b), Index: ix, IndexJSON: b, Images: images}, nil
}

// BusyboxFiles are the entries of the busybox layer: /bin/busybox, a
// symlink per applet, /etc/passwd and /etc/group, /tmp and /root.
func BusyboxFiles() ([]File, error) {
	data, err := os.ReadFile(BusyboxPath)
	if err != nil {
		return nil, fmt.Errorf("read %s (package busybox-static): %w", BusyboxPath, err)
	}
	out, err := exec.Command(BusyboxPath, "--list").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list: %w", BusyboxPath, err)
	}
	files := []File{
		{Name: "bin/", Type: tar.TypeDir},
		{Name: "bin/busybox", Mode: 0o755, Data: data},
		{Name: "etc/", Type: tar.TypeDir},
		{Name: "etc/passwd", Data: []byte("root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")},
		{Name: "etc/group", Data: []byte("root:x:0:\ndaemon:x:1:\nnogroup:x:65534:\n")},
		{Name: "root/", Type: tar.TypeDir, Mode: 0o700},
		{Name: "tmp/", Type: tar.TypeDir, Mode: 0o1777},
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet == "busybox" || strings.Contains(applet, "/") {
			continue
		}
		files = append(files, File{Name: "bin/" + applet, Type: tar.TypeSymlink, Mode: 0o777, Linkname: "busybox"})
	}
	return files, nil
}

// BusyboxImage is a one-layer linux/amd64 busybox image running /bin/sh.
func BusyboxImage(t testing.TB) *Image {
	t.Helper()
	files, err := BusyboxFiles()
	if err != nil {
		t.Skipf("busybox image: %v", err)
	}
	return mustImage(t, Platform{}, false, files)
}

func mustImage(t testing.TB, p Platform, docker bool, layers ...[]File) *Image {
	t.Helper()
	var ls []*Layer
	for _, files := range layers {
		l, err := NewLayer(files, Gzip)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
	}
	img, err := NewImage(p, docker, []string{"/bin/sh"}, ls...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// Push pushes img as name ("repo:tag") to r and returns its manifest digest.
func Push(t testing.TB, r *Registry, nameTag string, img *Image) digest.Digest {
	t.Helper()
	repo, tag := splitNameTag(t, nameTag)
	if err := r.Pusher().PushImage(context.Background(), repo, tag, img); err != nil {
		t.Fatal(err)
	}
	return img.Digest
}

// PushIndex pushes idx (with its images) as name to r and returns the
// index digest.
func PushIndex(t testing.TB, r *Registry, nameTag string, idx *Index) digest.Digest {
	t.Helper()
	repo, tag := splitNameTag(t, nameTag)
	if err := r.Pusher().PushIndex(context.Background(), repo, tag, idx); err != nil {
		t.Fatal(err)
	}
	return idx.Digest
}

func splitNameTag(t testing.TB, nameTag string) (repo, tag string) {
	t.Helper()
	repo, tag, err := SplitNameTag(nameTag)
	if err != nil {
		t.Fatal(err)
	}
	return repo, tag
}

// PushBusybox pushes BusyboxImage as name.
func PushBusybox(t testing.TB, r *Registry, nameTag string) *Image {
	t.Helper()
	img := BusyboxImage(t)
	Push(t, r, nameTag, img)
	return img
}

// PushDockerBusybox pushes the busybox image as a Docker schema 2 manifest
// (Docker media types for manifest, config and layer).
func PushDockerBusybox(t testing.TB, r *Registry, nameTag string) *Image {
	t.Helper()
	files, err := BusyboxFiles()
	if err != nil {
		t.Skipf("busybox image: %v", err)
	}
	img := mustImage(t, Platform{}, true, files)
	Push(t, r, nameTag, img)
	return img
}

// PlatformFile is the file every image of MultiArchIndex carries, holding
// the platform string ("linux/arm/v7"), so a test can tell which it got.
const PlatformFile = "etc/gantry-platform"

// MultiArchPlatforms are the platforms of MultiArchIndex, in index order.
var MultiArchPlatforms = []Platform{
	{OS: "linux", Architecture: "amd64"},
	{OS: "linux", Architecture: "arm64", Variant: "v8"},
	{OS: "linux", Architecture: "arm", Variant: "v7"},
	{OS: "linux", Architecture: "arm", Variant: "v6"},
}

// MultiArchIndex is an OCI index of MultiArchPlatforms: amd64 is busybox,
// the others a tiny layer; each holds PlatformFile.
func MultiArchIndex(t testing.TB) *Index {
	t.Helper()
	var images []*Image
	for _, p := range MultiArchPlatforms {
		marker := []File{{Name: PlatformFile, Data: []byte(p.String() + "\n")}}
		layers := [][]File{marker}
		if p.Architecture == "amd64" {
			files, err := BusyboxFiles()
			if err != nil {
				t.Skipf("busybox image: %v", err)
			}
			layers = [][]File{files, marker}
		}
		images = append(images, mustImage(t, p, false, layers...))
	}
	idx, err := NewIndex(images...)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// PushMultiArch pushes MultiArchIndex as name.
func PushMultiArch(t testing.TB, r *Registry, nameTag string) *Index {
	t.Helper()
	idx := MultiArchIndex(t)
	PushIndex(t, r, nameTag, idx)
	return idx
}

// ZstdImage is a one-layer image whose layer is zstd-compressed.
func ZstdImage(t testing.TB) *Image {
	t.Helper()
	l, err := NewLayer([]File{
		{Name: "zstd/", Type: tar.TypeDir},
		{Name: "zstd/hello.txt", Data: bytes.Repeat([]byte("hello zstd\n"), 1000)},
	}, Zstd)
	if err != nil {
		t.Fatal(err)
	}
	img, err := NewImage(Platform{}, false, []string{"/bin/sh"}, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// ManyLayersImage has n layers; layer i adds /layers/<i> holding "i" and
// rewrites /layers/top to "i", so the top layer's version wins.
func ManyLayersImage(t testing.TB, n int) *Image {
	t.Helper()
	var layers [][]File
	for i := 0; i < n; i++ {
		s := fmt.Sprint(i)
		layers = append(layers, []File{
			{Name: "layers/", Type: tar.TypeDir},
			{Name: "layers/" + s, Data: []byte(s + "\n")},
			{Name: "layers/top", Data: []byte(s + "\n")},
		})
	}
	return mustImage(t, Platform{}, false, layers...)
}

// WhiteoutImage has two layers. The first makes /a/{keep,gone}, /opaque/{old1,old2}
// and /dir/sub/file; the second deletes /a/gone (.wh.gone), /dir
// (.wh.dir), makes /opaque opaque (.wh..wh..opq) adding /opaque/new.
// Expected result: /a/keep, /opaque/new; no /a/gone, /opaque/old*, /dir.
func WhiteoutImage(t testing.TB) *Image {
	t.Helper()
	base := []File{
		{Name: "a/", Type: tar.TypeDir},
		{Name: "a/keep", Data: []byte("keep\n")},
		{Name: "a/gone", Data: []byte("gone\n")},
		{Name: "opaque/", Type: tar.TypeDir},
		{Name: "opaque/old1", Data: []byte("old1\n")},
		{Name: "opaque/old2", Data: []byte("old2\n")},
		{Name: "dir/", Type: tar.TypeDir},
		{Name: "dir/sub/", Type: tar.TypeDir},
		{Name: "dir/sub/file", Data: []byte("file\n")},
	}
	top := []File{
		{Name: "a/", Type: tar.TypeDir},
		{Name: "a/.wh.gone"},
		{Name: ".wh.dir"},
		{Name: "opaque/", Type: tar.TypeDir},
		{Name: "opaque/.wh..wh..opq"},
		{Name: "opaque/new", Data: []byte("new\n")},
	}
	return mustImage(t, Platform{}, false, base, top)
}

// HardlinkImage has /h/orig (0640, uid 1000, "data") and /h/link, a
// hardlink to it, plus a setuid /h/suid (04755) and an xattr
// user.gantry=yes on /h/orig.
func HardlinkImage(t testing.TB) *Image {
	t.Helper()
	return mustImage(t, Platform{}, false, []File{
		{Name: "h/", Type: tar.TypeDir},
		{Name: "h/orig", Mode: 0o640, UID: 1000, GID: 1000, Data: []byte("data\n"), Xattrs: map[string]string{"user.gantry": "yes"}},
		{Name: "h/link", Type: tar.TypeLink, Linkname: "h/orig"},
		{Name: "h/suid", Mode: 0o4755, Data: []byte("#!/bin/sh\n")},
	})
}

// DeviceImage has /dev/null (char 1:3), /dev/loop9 (block 7:9) and a FIFO
// /dev/fifo.
func DeviceImage(t testing.TB) *Image {
	t.Helper()
	return mustImage(t, Platform{}, false, []File{
		{Name: "dev/", Type: tar.TypeDir},
		{Name: "dev/null", Type: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
		{Name: "dev/loop9", Type: tar.TypeBlock, Mode: 0o660, Devmajor: 7, Devminor: 9},
		{Name: "dev/fifo", Type: tar.TypeFifo, Mode: 0o644},
	})
}

// LargeSize is the size of the file in LargeImage.
const LargeSize = 210 << 20

// RequireLarge skips the test unless LargeEnv is set to 1.
func RequireLarge(t testing.TB) {
	t.Helper()
	if os.Getenv(LargeEnv) != "1" || testing.Short() {
		t.Skipf("large image: set %s=1 (the e2e suite does)", LargeEnv)
	}
}

// LargeImage is a one-layer image with a LargeSize file of random
// incompressible data (/large.bin), generated on the fly from seed. It skips
// the test unless LargeEnv is set.
func LargeImage(t testing.TB, seed uint64) *Image {
	t.Helper()
	RequireLarge(t)
	l, err := RandomLayer(LargeSize, seed)
	if err != nil {
		t.Fatal(err)
	}
	img, err := NewImage(Platform{}, false, []string{"/bin/sh"}, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}
