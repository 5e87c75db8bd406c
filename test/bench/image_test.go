package bench

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"io"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/gantry-project/gantry/test/registry"
)

func TestPullImageShape(t *testing.T) {
	var tarBytes int64
	layers := map[registry.Compression]int{}
	for _, s := range PullImage {
		tarBytes += int64(s.SmallFiles*s.SmallMean) + int64(s.LargeFiles)*s.LargeSize
		layers[s.Compression]++
	}
	if len(PullImage) != 8 {
		t.Errorf("PullImage has %d layers, want 8", len(PullImage))
	}
	if tarBytes < 350e6 || tarBytes > 450e6 {
		t.Errorf("PullImage holds about %d bytes of files, want about 400 MB", tarBytes)
	}
	if layers[registry.Zstd] != 1 || layers[registry.Gzip] != 7 {
		t.Errorf("compressions %v, want 7 gzip and 1 zstd", layers)
	}
}

func TestScale(t *testing.T) {
	tests := []struct {
		name string
		in   LayerSpec
		div  int
		want LayerSpec
	}{
		{"identity", LayerSpec{SmallFiles: 10, SmallMean: 100}, 1, LayerSpec{SmallFiles: 10, SmallMean: 100}},
		{"divided", LayerSpec{SmallFiles: 1000, SmallMean: 4096, Symlinks: 100, LargeFiles: 2, LargeSize: 1 << 30}, 100,
			LayerSpec{SmallFiles: 10, SmallMean: 64, Symlinks: 1, LargeFiles: 2, LargeSize: 1 << 30 / 100}},
		{"floors", LayerSpec{SmallFiles: 3, SmallMean: 100, LargeFiles: 1, LargeSize: 1000}, 1000,
			LayerSpec{SmallFiles: 1, SmallMean: 64, LargeFiles: 1, LargeSize: 4 << 10}},
		{"none stays none", LayerSpec{LargeFiles: 1, LargeSize: 8 << 20}, 1000,
			LayerSpec{LargeFiles: 1, LargeSize: 8 << 20 / 1000}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Scale([]LayerSpec{tc.in}, tc.div)[0]
			if got != tc.want {
				t.Errorf("Scale(%+v, %d) = %+v, want %+v", tc.in, tc.div, got, tc.want)
			}
		})
	}
}

// TestBuild builds the benchmark image at 1/500 of its size and checks
// every layer's entries, compression and compressibility, and that the
// same input gives the same digest.
func TestBuild(t *testing.T) {
	specs := Scale(PullImage, 500)
	img, layers, st, err := Build(specs)
	if err != nil {
		t.Fatal(err)
	}
	if st.Layers != 8 || len(layers) != 8 {
		t.Fatalf("%d layers (stats %d), want 8", len(layers), st.Layers)
	}
	wantFiles := 0
	for i, l := range layers {
		s := specs[i]
		wantFiles += s.SmallFiles + s.LargeFiles
		blob := readAll(t, l.Compressed)
		var rd io.Reader
		switch s.Compression {
		case registry.Gzip:
			zr, err := gzip.NewReader(bytes.NewReader(blob))
			if err != nil {
				t.Fatalf("layer %d: not gzip: %v", i, err)
			}
			rd = zr
		case registry.Zstd:
			zr, err := zstd.NewReader(bytes.NewReader(blob))
			if err != nil {
				t.Fatalf("layer %d: not zstd: %v", i, err)
			}
			defer zr.Close()
			rd = zr
		}
		tr := tar.NewReader(rd)
		counts := map[byte]int{}
		var small, large int64
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("layer %d: %v", i, err)
			}
			counts[hdr.Typeflag]++
			if hdr.Typeflag == tar.TypeReg {
				if bytes.HasSuffix([]byte(hdr.Name), []byte(".bin")) {
					large += hdr.Size
				} else {
					small += hdr.Size
				}
			}
		}
		if counts[tar.TypeReg] != s.SmallFiles+s.LargeFiles || counts[tar.TypeSymlink] != s.Symlinks || counts[tar.TypeDir] != len(dirsOf(s)) {
			t.Errorf("layer %d: entries %v, want %d files, %d symlinks, %d dirs", i, counts, s.SmallFiles+s.LargeFiles, s.Symlinks, len(dirsOf(s)))
		}
		if large != int64(s.LargeFiles)*s.LargeSize {
			t.Errorf("layer %d: large files hold %d bytes, want %d", i, large, int64(s.LargeFiles)*s.LargeSize)
		}
		// Large files are incompressible, small ones are not.
		if s.LargeFiles > 0 && int64(len(blob)) < large {
			t.Errorf("layer %d: blob %d bytes for %d incompressible bytes", i, len(blob), large)
		}
		if s.LargeFiles == 0 && small > 20000 && int64(len(blob)) > small/2 {
			t.Errorf("layer %d: blob %d bytes for %d bytes of text: not compressible", i, len(blob), small)
		}
	}
	if st.Files != wantFiles {
		t.Errorf("stats count %d files, want %d", st.Files, wantFiles)
	}
	d1 := img.Digest
	img2, _, _, err := Build(specs)
	if err != nil {
		t.Fatal(err)
	}
	if d2 := img2.Digest; d1 != d2 {
		t.Errorf("two builds give %s and %s, want the same digest", d1, d2)
	}
}

func readAll(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTextCompressible checks that the small files' text compresses about
// 3:1 with gzip (between 2:1 and 5:1), as real text files do.
func TestTextCompressible(t *testing.T) {
	s := LayerSpec{Dir: "x", SmallFiles: 200, SmallMean: 8 << 10}
	var raw bytes.Buffer
	for _, f := range Files(s, 1) {
		raw.Write(f.Data)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	ratio := float64(raw.Len()) / float64(gz.Len())
	if ratio < 2 || ratio > 5 {
		t.Errorf("%d bytes of text gzip to %d (%.2f:1), want between 2:1 and 5:1", raw.Len(), gz.Len(), ratio)
	}
}
