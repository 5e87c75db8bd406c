// Command pushimage builds the synthetic image of the pull benchmark
// (bench.PullImage: about 400 MB in 8 layers) and pushes it to a running
// registry over plain HTTP. It starts nothing. With -blobs it also writes
// each layer blob to DIR/layer-N.tar.gz or DIR/layer-N.tar.zst, for the
// decompression measurements. It prints key=value lines: ref, digest,
// layers, files, the compressed and uncompressed sizes (in total and per
// compression) and how long building and pushing took.
//
//	go run ./test/bench/cmd/pushimage -registry 127.0.0.1:5000 [-name bench/pull:latest] [-blobs DIR] [-scale N]
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/gantry-project/gantry/test/bench"
	"github.com/gantry-project/gantry/test/registry"
)

func main() {
	host := flag.String("registry", "", "registry host:port (plain HTTP)")
	repo := flag.String("name", "bench/pull:latest", "repository:tag to push")
	blobs := flag.String("blobs", "", "directory to write the layer blobs into (optional)")
	scale := flag.Int("scale", 1, "divide every size and count by this (1 for the benchmark)")
	flag.Parse()
	if *host == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "usage: pushimage -registry HOST:PORT [-name REPO:TAG] [-blobs DIR] [-scale N]")
		os.Exit(2)
	}
	if err := run(*host, *repo, *blobs, *scale); err != nil {
		fmt.Fprintf(os.Stderr, "pushimage: %v\n", err)
		os.Exit(1)
	}
}

func run(host, repo, blobs string, scale int) error {
	specs := bench.Scale(bench.PullImage, scale)
	start := time.Now()
	img, layers, st, err := bench.Build(specs)
	if err != nil {
		return fmt.Errorf("build image: %w", err)
	}
	built := time.Since(start)
	name, tag, err := registry.SplitNameTag(repo)
	if err != nil {
		return err
	}
	ref := host + "/" + name + ":" + tag
	start = time.Now()
	p := &registry.Pusher{BaseURL: "http://" + host}
	if err := p.PushImage(context.Background(), name, tag, img); err != nil {
		return fmt.Errorf("push %s: %w", ref, err)
	}
	pushed := time.Since(start)
	dgst := img.Digest
	// Per compression: compressed and uncompressed bytes.
	var gzC, gzU, zsC, zsU int64
	for i, l := range layers {
		c := l.Size
		u, err := tarSize(l)
		if err != nil {
			return err
		}
		ext := "tar.gz"
		if specs[i].Compression == registry.Zstd {
			ext = "tar.zst"
			zsC, zsU = zsC+c, zsU+u
		} else {
			gzC, gzU = gzC+c, gzU+u
		}
		if blobs != "" {
			if err := writeBlob(filepath.Join(blobs, fmt.Sprintf("layer-%d.%s", i, ext)), l); err != nil {
				return err
			}
		}
	}
	fmt.Printf("ref=%s\ndigest=%s\nlayers=%d\nfiles=%d\ndirs=%d\nsymlinks=%d\n", ref, dgst, st.Layers, st.Files, st.Dirs, st.Symlinks)
	fmt.Printf("compressed_bytes=%d\nuncompressed_bytes=%d\n", st.Compressed, st.Uncompressed)
	fmt.Printf("gzip_compressed_bytes=%d\ngzip_uncompressed_bytes=%d\nzstd_compressed_bytes=%d\nzstd_uncompressed_bytes=%d\n", gzC, gzU, zsC, zsU)
	fmt.Printf("build_seconds=%.2f\npush_seconds=%.2f\n", built.Seconds(), pushed.Seconds())
	return nil
}

func tarSize(l *registry.Layer) (int64, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	return io.Copy(io.Discard, rc)
}

func writeBlob(path string, l *registry.Layer) error {
	rc, err := l.Compressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
