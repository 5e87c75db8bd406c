package registry

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
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

// NewImage assembles an OCI image (or a Docker schema 2 one with docker set)
// of layers for platform p, running cmd.
func NewImage(p Platform, docker bool, cmd []string, layers ...v1.Layer) (v1.Image, error) {
	if p.OS == "" {
		p.OS = "linux"
	}
	if p.Architecture == "" {
		p.Architecture = "amd64"
	}
	cfg := &v1.ConfigFile{
		OS:           p.OS,
		Architecture: p.Architecture,
		Variant:      p.Variant,
		Created:      v1.Time{Time: Epoch},
		RootFS:       v1.RootFS{Type: "layers"},
		Config: v1.Config{
			Cmd:        cmd,
			Env:        []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			WorkingDir: "/",
		},
	}
	img, err := mutate.ConfigFile(empty.Image, cfg)
	if err != nil {
		return nil, err
	}
	adds := make([]mutate.Addendum, 0, len(layers))
	for _, l := range layers {
		if docker {
			if ml, ok := l.(*memLayer); ok && ml.mediaType == MediaTypeOCILayerGzip {
				l = WithMediaType(l, MediaTypeDockerLayer)
			}
		}
		adds = append(adds, mutate.Addendum{Layer: l, History: v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: "gantry test/registry"}})
	}
	img, err = mutate.Append(img, adds...)
	if err != nil {
		return nil, err
	}
	if docker {
		return mutate.MediaType(img, types.DockerManifestSchema2), nil
	}
	img = mutate.MediaType(img, types.OCIManifestSchema1)
	return mutate.ConfigMediaType(img, types.OCIConfigJSON), nil
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
func BusyboxImage(t testing.TB) v1.Image {
	t.Helper()
	files, err := BusyboxFiles()
	if err != nil {
		t.Skipf("busybox image: %v", err)
	}
	return mustImage(t, Platform{}, false, files)
}

func mustImage(t testing.TB, p Platform, docker bool, layers ...[]File) v1.Image {
	t.Helper()
	var ls []v1.Layer
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
func Push(t testing.TB, r *Registry, nameTag string, img v1.Image) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(r.Ref(nameTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, r.RemoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushIndex pushes idx (with its images) as name to r and returns the
// index digest.
func PushIndex(t testing.TB, r *Registry, nameTag string, idx v1.ImageIndex) v1.Hash {
	t.Helper()
	ref, err := name.ParseReference(r.Ref(nameTag))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(ref, idx, r.RemoteOptions()...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// PushBusybox pushes BusyboxImage as name.
func PushBusybox(t testing.TB, r *Registry, nameTag string) v1.Image {
	t.Helper()
	img := BusyboxImage(t)
	Push(t, r, nameTag, img)
	return img
}

// PushDockerBusybox pushes the busybox image as a Docker schema 2 manifest
// (Docker media types for manifest, config and layer).
func PushDockerBusybox(t testing.TB, r *Registry, nameTag string) v1.Image {
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
func MultiArchIndex(t testing.TB) v1.ImageIndex {
	t.Helper()
	var idx v1.ImageIndex = empty.Index
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
		img := mustImage(t, p, false, layers...)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
			Add: img,
			Descriptor: v1.Descriptor{
				MediaType: types.OCIManifestSchema1,
				Platform:  &v1.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant},
			},
		})
	}
	return mutate.IndexMediaType(idx, types.OCIImageIndex)
}

// PushMultiArch pushes MultiArchIndex as name.
func PushMultiArch(t testing.TB, r *Registry, nameTag string) v1.ImageIndex {
	t.Helper()
	idx := MultiArchIndex(t)
	PushIndex(t, r, nameTag, idx)
	return idx
}

// ZstdImage is a one-layer image whose layer is zstd-compressed.
func ZstdImage(t testing.TB) v1.Image {
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
func ManyLayersImage(t testing.TB, n int) v1.Image {
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
func WhiteoutImage(t testing.TB) v1.Image {
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
func HardlinkImage(t testing.TB) v1.Image {
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
func DeviceImage(t testing.TB) v1.Image {
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
func LargeImage(t testing.TB, seed uint64) v1.Image {
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
