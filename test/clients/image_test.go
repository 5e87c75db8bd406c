package clients

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readArchive returns the regular files of a tar by name, and its
// symlinks' targets.
func readArchive(t *testing.T, data []byte) (files map[string][]byte, links map[string]string) {
	t.Helper()
	files, links = map[string][]byte{}, map[string]string{}
	tr := tar.NewReader(bytes.NewReader(data))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, links
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		switch hdr.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatalf("read tar entry %s: %v", hdr.Name, err)
			}
			files[hdr.Name] = b
		case tar.TypeSymlink:
			links[hdr.Name] = hdr.Linkname
		}
	}
}

// blobOf returns the blob of digest d from the layout's files, checking
// that its content matches the digest and size.
func blobOf(t *testing.T, files map[string][]byte, d Descriptor) []byte {
	t.Helper()
	hexDigest, ok := strings.CutPrefix(d.Digest, "sha256:")
	if !ok {
		t.Fatalf("descriptor digest %q: not sha256", d.Digest)
	}
	b, ok := files["blobs/sha256/"+hexDigest]
	if !ok {
		t.Fatalf("blob %s missing from the layout", d.Digest)
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != hexDigest {
		t.Errorf("blob %s: content digest %s", d.Digest, got)
	}
	if int64(len(b)) != d.Size {
		t.Errorf("blob %s: size %d, descriptor says %d", d.Digest, len(b), d.Size)
	}
	return b
}

// TestWriteImageArchive checks the OCI layout shape (index -> manifest ->
// config and layer, digests and sizes, the image name annotation) and the
// layer's content; it needs no root.
func TestWriteImageArchive(t *testing.T) {
	busybox, err := findBusybox()
	if err != nil {
		t.Skip(err)
	}
	dst := filepath.Join(t.TempDir(), "image.tar")
	if err := WriteImageArchive(dst, busybox); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(dst)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := readArchive(t, data)
	if got := string(files["oci-layout"]); got != `{"imageLayoutVersion":"1.0.0"}` {
		t.Errorf("oci-layout: %q", got)
	}
	var idx Index
	if err := json.Unmarshal(files["index.json"], &idx); err != nil {
		t.Fatalf("index.json: %v", err)
	}
	if idx.SchemaVersion != 2 || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: schemaVersion %d with %d manifests, want 2 with 1", idx.SchemaVersion, len(idx.Manifests))
	}
	md := idx.Manifests[0]
	if md.MediaType != mediaTypeManifest {
		t.Errorf("index entry media type %q", md.MediaType)
	}
	if got := md.Annotations[annotationContainerdImage]; got != ImageName {
		t.Errorf("index entry %s = %q, want %q", annotationContainerdImage, got, ImageName)
	}
	if got := md.Annotations[annotationRefName]; got != "latest" {
		t.Errorf("index entry %s = %q, want latest", annotationRefName, got)
	}
	var man Manifest
	if err := json.Unmarshal(blobOf(t, files, md), &man); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	if man.Config.MediaType != mediaTypeConfig || len(man.Layers) != 1 || man.Layers[0].MediaType != mediaTypeLayer {
		t.Fatalf("manifest shape: %+v", man)
	}
	var cfg ImageConfig
	if err := json.Unmarshal(blobOf(t, files, man.Config), &cfg); err != nil {
		t.Fatalf("config: %v", err)
	}
	layer := blobOf(t, files, man.Layers[0])
	if len(cfg.RootFS.DiffIDs) != 1 || cfg.RootFS.DiffIDs[0] != man.Layers[0].Digest {
		t.Errorf("config diff_ids %v, want [%s] (the uncompressed layer's digest)", cfg.RootFS.DiffIDs, man.Layers[0].Digest)
	}
	if cfg.OS != "linux" || cfg.Architecture != "amd64" || len(cfg.Config.Cmd) == 0 {
		t.Errorf("config: os %q arch %q cmd %v", cfg.OS, cfg.Architecture, cfg.Config.Cmd)
	}

	lfiles, llinks := readArchive(t, layer)
	bin, _ := os.ReadFile(busybox)
	if !bytes.Equal(lfiles["bin/busybox"], bin) {
		t.Errorf("layer: bin/busybox differs from %s", busybox)
	}
	for _, applet := range []string{"bin/sh", "bin/echo", "usr/bin/id", "bin/sleep", "bin/cat", "usr/bin/tty"} {
		if got := llinks[applet]; got != "/bin/busybox" {
			t.Errorf("layer: %s -> %q, want /bin/busybox", applet, got)
		}
	}
	if !strings.Contains(string(lfiles["etc/passwd"]), ":1000:1000:") {
		t.Errorf("layer: /etc/passwd has no uid 1000: %q", lfiles["etc/passwd"])
	}

	// The same busybox gives the same archive.
	again := filepath.Join(t.TempDir(), "again.tar")
	if err := WriteImageArchive(again, busybox); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(again); !bytes.Equal(b, data) {
		t.Error("two archives of the same busybox differ")
	}
}
