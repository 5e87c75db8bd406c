package clients

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// ImageName is the reference that the archive of WriteImageArchive gives its
// image, read by containerd's importer and by podman load alike (the
// io.containerd.image.name annotation of the index entry).
const ImageName = "localhost/gantry-busybox:latest"

// OCI image-spec media types and annotations used by the archive.
const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar"

	annotationRefName         = "org.opencontainers.image.ref.name"
	annotationContainerdImage = "io.containerd.image.name"
)

// epoch is the modification time of every archive entry, so that the same
// busybox gives the same digests.
var epoch = time.Unix(0, 0).UTC()

// Descriptor is an image-spec content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is the platform of an index entry.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

// Index is an image-spec image index (index.json of a layout).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
}

// Manifest is an image-spec image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// ImageConfig is the part of an image-spec image configuration the archive
// fills in.
type ImageConfig struct {
	Created      string          `json:"created,omitempty"`
	Architecture string          `json:"architecture"`
	OS           string          `json:"os"`
	Config       ExecutionConfig `json:"config"`
	RootFS       RootFS          `json:"rootfs"`
	History      []History       `json:"history,omitempty"`
}

// ExecutionConfig is the default process of the image.
type ExecutionConfig struct {
	Env        []string `json:"Env,omitempty"`
	Cmd        []string `json:"Cmd,omitempty"`
	WorkingDir string   `json:"WorkingDir,omitempty"`
}

// RootFS lists the layers' uncompressed digests.
type RootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

// History is one image history entry.
type History struct {
	Created   string `json:"created,omitempty"`
	CreatedBy string `json:"created_by,omitempty"`
}

// blob is one file of the layout's blobs/sha256 directory.
type blob struct {
	digest string
	data   []byte
}

func newBlob(data []byte) blob {
	sum := sha256.Sum256(data)
	return blob{digest: "sha256:" + hex.EncodeToString(sum[:]), data: data}
}

func (b blob) descriptor(mediaType string) Descriptor {
	return Descriptor{MediaType: mediaType, Digest: b.digest, Size: int64(len(b.data))}
}

// WriteImageArchive writes to dst an OCI image archive (a tar of an OCI
// image layout) holding one amd64 image named ImageName whose single
// uncompressed layer has the static busybox binary at /bin/busybox, a
// symlink for each of its applets, /etc/passwd and /etc/group with root,
// nobody and a user 1000, and the usual empty directories. The image runs
// sh by default. Building needs no root.
func WriteImageArchive(dst, busybox string) error {
	layer, err := busyboxLayer(busybox)
	if err != nil {
		return err
	}
	layerBlob := newBlob(layer)
	created := epoch.Format(time.RFC3339)
	cfg := ImageConfig{
		Created:      created,
		Architecture: "amd64",
		OS:           "linux",
		Config: ExecutionConfig{
			Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd: []string{"sh"},
		},
		RootFS:  RootFS{Type: "layers", DiffIDs: []string{layerBlob.digest}},
		History: []History{{Created: created, CreatedBy: "gantry test/clients: busybox " + filepath.Base(busybox)}},
	}
	cfgJSON, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encode image config: %w", err)
	}
	cfgBlob := newBlob(cfgJSON)
	man := Manifest{
		SchemaVersion: 2,
		MediaType:     mediaTypeManifest,
		Config:        cfgBlob.descriptor(mediaTypeConfig),
		Layers:        []Descriptor{layerBlob.descriptor(mediaTypeLayer)},
	}
	manJSON, err := json.Marshal(man)
	if err != nil {
		return fmt.Errorf("encode image manifest: %w", err)
	}
	manBlob := newBlob(manJSON)
	manDesc := manBlob.descriptor(mediaTypeManifest)
	manDesc.Annotations = map[string]string{
		annotationContainerdImage: ImageName,
		annotationRefName:         ImageName[strings.LastIndex(ImageName, ":")+1:],
	}
	manDesc.Platform = &Platform{Architecture: "amd64", OS: "linux"}
	idx := Index{SchemaVersion: 2, MediaType: mediaTypeIndex, Manifests: []Descriptor{manDesc}}
	idxJSON, err := json.Marshal(idx)
	if err != nil {
		return fmt.Errorf("encode image index: %w", err)
	}

	var out bytes.Buffer
	tw := tar.NewWriter(&out)
	dirs := []string{"blobs/", "blobs/sha256/"}
	for _, d := range dirs {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d, Mode: 0o755, ModTime: epoch}); err != nil {
			return fmt.Errorf("write archive entry %s: %w", d, err)
		}
	}
	files := []struct {
		name string
		data []byte
	}{
		{"oci-layout", []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		{"index.json", idxJSON},
	}
	for _, b := range []blob{layerBlob, cfgBlob, manBlob} {
		files = append(files, struct {
			name string
			data []byte
		}{"blobs/sha256/" + strings.TrimPrefix(b.digest, "sha256:"), b.data})
	}
	for _, f := range files {
		if err := writeTarFile(tw, f.name, f.data, 0o644); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("close image archive: %w", err)
	}
	tmp := dst + ".tmp"
	if err := os.WriteFile(tmp, out.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write image archive: %w", err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return fmt.Errorf("write image archive: %w", err)
	}
	return nil
}

func writeTarFile(tw *tar.Writer, name string, data []byte, mode int64) error {
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(data)), ModTime: epoch}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("write archive entry %s: %w", name, err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("write archive entry %s: %w", name, err)
	}
	return nil
}

// busyboxLayer returns the uncompressed layer tar of the image.
func busyboxLayer(busybox string) ([]byte, error) {
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, fmt.Errorf("read busybox: %w", err)
	}
	list, err := exec.Command(busybox, "--list-full").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --list-full: %w", busybox, err)
	}
	links := map[string]bool{}
	for _, l := range strings.Fields(string(list)) {
		l = strings.TrimPrefix(path.Clean("/"+l), "/")
		if l != "" && l != "bin/busybox" {
			links[l] = true
		}
	}
	dirs := map[string]int64{
		"bin": 0o755, "dev": 0o755, "etc": 0o755, "home": 0o755, "proc": 0o555,
		"root": 0o700, "run": 0o755, "sbin": 0o755, "sys": 0o555, "tmp": 0o1777,
		"usr": 0o755, "usr/bin": 0o755, "usr/sbin": 0o755, "var": 0o755,
		"var/tmp": 0o1777, "home/user": 0o755,
	}
	for l := range links {
		for d := path.Dir(l); d != "."; d = path.Dir(d) {
			if _, ok := dirs[d]; !ok {
				dirs[d] = 0o755
			}
		}
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirNames := make([]string, 0, len(dirs))
	for d := range dirs {
		dirNames = append(dirNames, d)
	}
	sort.Strings(dirNames)
	for _, d := range dirNames {
		hdr := &tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: dirs[d], ModTime: epoch}
		if d == "home/user" {
			hdr.Uid, hdr.Gid = 1000, 1000
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write layer entry %s: %w", d, err)
		}
	}
	if err := writeTarFile(tw, "bin/busybox", bin, 0o755); err != nil {
		return nil, err
	}
	linkNames := make([]string, 0, len(links))
	for l := range links {
		linkNames = append(linkNames, l)
	}
	sort.Strings(linkNames)
	for _, l := range linkNames {
		hdr := &tar.Header{Typeflag: tar.TypeSymlink, Name: l, Linkname: "/bin/busybox", Mode: 0o777, ModTime: epoch}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("write layer entry %s: %w", l, err)
		}
	}
	etc := []struct{ name, data string }{
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"},
		{"etc/group", "root:x:0:\nuser:x:1000:\nnogroup:x:65534:\n"},
		{"etc/hostname", "gantry\n"},
	}
	for _, f := range etc {
		if err := writeTarFile(tw, f.name, []byte(f.data), 0o644); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("close layer: %w", err)
	}
	return buf.Bytes(), nil
}
