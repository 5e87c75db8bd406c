package bench

import (
	"archive/tar"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/gantry-project/gantry/test/registry"
)

// LayerSpec describes one layer of the synthetic image.
type LayerSpec struct {
	// Dir is the directory (without a trailing slash) holding the layer's
	// files; it is split into subdirectories of 100 small files each.
	Dir string
	// SmallFiles text-like files (about 3:1 compressible) whose sizes
	// spread uniformly over [SmallMean/2, 3*SmallMean/2).
	SmallFiles int
	SmallMean  int
	// Symlinks to small files of the layer.
	Symlinks int
	// LargeFiles incompressible files of LargeSize bytes each.
	LargeFiles int
	LargeSize  int64
	// Compression of the layer blob.
	Compression registry.Compression
}

const mib = 1 << 20

// PullImage is the image of the pull benchmark: 8 layers, about 400 MB
// (382 MiB) of tar, 40,600 small files and 5 large ones; layer 4 is zstd,
// the others gzip.
var PullImage = []LayerSpec{
	{Dir: "usr/lib", SmallFiles: 12000, SmallMean: 4 << 10, Symlinks: 1000, Compression: registry.Gzip},
	{Dir: "opt/blob-a", LargeFiles: 2, LargeSize: 48 * mib, Compression: registry.Gzip},
	{Dir: "usr/share", SmallFiles: 16000, SmallMean: 1536, Symlinks: 2000, Compression: registry.Gzip},
	{Dir: "opt/blob-b", LargeFiles: 1, LargeSize: 80 * mib, Compression: registry.Gzip},
	{Dir: "opt/app", SmallFiles: 400, SmallMean: 128 << 10, Compression: registry.Zstd},
	{Dir: "var/lib", SmallFiles: 8000, SmallMean: 2 << 10, Compression: registry.Gzip},
	{Dir: "opt/blob-c", LargeFiles: 2, LargeSize: 32 * mib, Compression: registry.Gzip},
	{Dir: "etc", SmallFiles: 1000, SmallMean: 4 << 10, Symlinks: 100, Compression: registry.Gzip},
}

// Stats sums up a built image.
type Stats struct {
	Layers int
	// Files counts regular files, Dirs directories, Symlinks symlinks.
	Files, Dirs, Symlinks int
	// Uncompressed is the size of the layer tars, Compressed of the blobs.
	Uncompressed, Compressed int64
}

// add adds the counts of the layer built from spec s (at the same div).
func (st *Stats) add(s LayerSpec, tarSize, blobSize int64) {
	st.Layers++
	st.Files += s.SmallFiles + s.LargeFiles
	st.Symlinks += s.Symlinks
	st.Dirs += len(dirsOf(s))
	st.Uncompressed += tarSize
	st.Compressed += blobSize
}

// Scale divides every count and size of specs by div (at least one small
// file of 64 bytes and one large file of 4 KiB remain where there were
// any), for tests that want the shape without the bytes.
func Scale(specs []LayerSpec, div int) []LayerSpec {
	if div <= 1 {
		return specs
	}
	out := make([]LayerSpec, len(specs))
	for i, s := range specs {
		s.SmallFiles = scaleCount(s.SmallFiles, div)
		s.Symlinks = scaleCount(s.Symlinks, div)
		if s.SmallFiles > 0 {
			s.SmallMean = max(s.SmallMean/div, 64)
		}
		if s.LargeFiles > 0 {
			s.LargeSize = max(s.LargeSize/int64(div), 4<<10)
		}
		out[i] = s
	}
	return out
}

func scaleCount(n, div int) int {
	if n == 0 {
		return 0
	}
	return max(n/div, 1)
}

// Build makes the layers of specs (layer i from seed i+1, several at once)
// and the image of them, running /bin/sh.
func Build(specs []LayerSpec) (*registry.Image, []*registry.Layer, Stats, error) {
	layers := make([]*registry.Layer, len(specs))
	errs := make([]error, len(specs))
	sem := make(chan struct{}, max(runtime.GOMAXPROCS(0), 1))
	var wg sync.WaitGroup
	for i, s := range specs {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l, err := registry.NewLayer(Files(s, uint64(i+1)), s.Compression)
			if err != nil {
				errs[i] = fmt.Errorf("layer %d (%s): %w", i, s.Dir, err)
				return
			}
			layers[i] = l
		}()
	}
	wg.Wait()
	var st Stats
	for i, err := range errs {
		if err != nil {
			return nil, nil, Stats{}, err
		}
		blobSize := layers[i].Size
		tarSize, err := uncompressedSize(layers[i])
		if err != nil {
			return nil, nil, Stats{}, fmt.Errorf("layer %d: %w", i, err)
		}
		st.add(specs[i], tarSize, blobSize)
	}
	img, err := registry.NewImage(registry.Platform{}, false, []string{"/bin/sh"}, layers...)
	if err != nil {
		return nil, nil, Stats{}, err
	}
	return img, layers, st, nil
}

func uncompressedSize(l *registry.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

// dirsOf lists the directories a layer of s holds, parents first.
func dirsOf(s LayerSpec) []string {
	var dirs []string
	// Every parent of s.Dir, then the subdirectories of the small files.
	for i := 0; i < len(s.Dir); i++ {
		if s.Dir[i] == '/' {
			dirs = append(dirs, s.Dir[:i]+"/")
		}
	}
	dirs = append(dirs, s.Dir+"/")
	for d := 0; d*100 < s.SmallFiles; d++ {
		dirs = append(dirs, fmt.Sprintf("%s/d%03d/", s.Dir, d))
	}
	return dirs
}

// Files returns the entries of a layer of s, generated from seed.
func Files(s LayerSpec, seed uint64) []registry.File {
	rng := rand.New(rand.NewPCG(seed, 0x9a7e))
	var files []registry.File
	for _, d := range dirsOf(s) {
		files = append(files, registry.File{Name: d, Type: tar.TypeDir})
	}
	words := vocabulary(rng)
	for i := 0; i < s.SmallFiles; i++ {
		size := s.SmallMean/2 + rng.IntN(max(s.SmallMean, 1))
		files = append(files, registry.File{
			Name: fmt.Sprintf("%s/d%03d/f%05d.txt", s.Dir, i/100, i),
			Data: text(rng, words, size),
		})
	}
	for i := 0; i < s.Symlinks; i++ {
		target := rng.IntN(s.SmallFiles)
		files = append(files, registry.File{
			Name:     fmt.Sprintf("%s/d%03d/l%05d", s.Dir, target/100, i),
			Type:     tar.TypeSymlink,
			Mode:     0o777,
			Linkname: fmt.Sprintf("f%05d.txt", target),
		})
	}
	for i := 0; i < s.LargeFiles; i++ {
		var key [32]byte
		key[0], key[1] = byte(seed), byte(i)
		data := make([]byte, s.LargeSize)
		_, _ = rand.NewChaCha8(key).Read(data)
		files = append(files, registry.File{Name: fmt.Sprintf("%s/large-%d.bin", s.Dir, i), Data: data})
	}
	return files
}

// vocabulary returns 2,048 pseudo-words of 2 to 11 lowercase letters.
func vocabulary(rng *rand.Rand) [][]byte {
	words := make([][]byte, 2048)
	for i := range words {
		w := make([]byte, 2+rng.IntN(10))
		for j := range w {
			w[j] = byte('a' + rng.IntN(26))
		}
		words[i] = w
	}
	return words
}

// text returns size bytes of words separated by spaces, with a newline
// about every 70 characters.
func text(rng *rand.Rand, words [][]byte, size int) []byte {
	out := make([]byte, 0, size+16)
	line := 0
	for len(out) < size {
		w := words[rng.IntN(len(words))]
		out = append(out, w...)
		line += len(w) + 1
		if line > 70 {
			out = append(out, '\n')
			line = 0
		} else {
			out = append(out, ' ')
		}
	}
	return out[:size]
}
