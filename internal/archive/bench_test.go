package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchLayer is a layer of 2,000 small files in 40 directories and 4 files
// of 8 MiB: the two shapes of the pull benchmark's image (docs/performance.md).
func benchLayer(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	small := bytes.Repeat([]byte("small text file line\n"), 150)
	large := make([]byte, 8<<20)
	for i := range large {
		large[i] = byte(i * 7919 >> 3)
	}
	write := func(h *tar.Header, data []byte) {
		h.ModTime, h.Mode = time.Unix(1700000000, 0), 0o644
		if h.Typeflag == tar.TypeDir {
			h.Mode = 0o755
		}
		h.Size = int64(len(data))
		if err := tw.WriteHeader(h); err != nil {
			b.Fatal(err)
		}
		if _, err := tw.Write(data); err != nil {
			b.Fatal(err)
		}
	}
	for d := range 40 {
		write(&tar.Header{Name: fmt.Sprintf("d%d/", d), Typeflag: tar.TypeDir}, nil)
		for f := range 50 {
			write(&tar.Header{Name: fmt.Sprintf("d%d/f%d", d, f), Typeflag: tar.TypeReg}, small)
		}
	}
	for i := range 4 {
		write(&tar.Header{Name: fmt.Sprintf("large%d", i), Typeflag: tar.TypeReg}, large)
	}
	if err := tw.Close(); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// BenchmarkApply applies benchLayer as unpack does on overlay: into an
// upper directory, with a Charge.
func BenchmarkApply(b *testing.B) {
	layer := benchLayer(b)
	base := b.TempDir()
	var charged int64
	opts := ApplyOptions{Whiteouts: WhiteoutOverlay, Charge: func(n int64) error { charged += n; return nil }}
	b.SetBytes(int64(len(layer)))
	b.ResetTimer()
	for i := range b.N {
		root := filepath.Join(base, fmt.Sprint(i))
		if err := os.Mkdir(root, 0o755); err != nil {
			b.Fatal(err)
		}
		if _, err := Apply(context.Background(), root, bytes.NewReader(layer), opts); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if err := os.RemoveAll(root); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}
