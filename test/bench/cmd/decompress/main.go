// Command decompress measures single-stream decompression throughput with
// the library gantryd uses (github.com/klauspost/compress): it decompresses
// each FILE (gzip or zstd, told by its magic bytes) to nothing, one after
// the other on one goroutine (the zstd decoder with concurrency 1; run it
// with GOMAXPROCS=1 and taskset for one core), and prints key=value lines:
// format, compressed_bytes, uncompressed_bytes, seconds, and the throughput
// in MB/s (10^6 bytes) of uncompressed output.
//
//	go run ./test/bench/cmd/decompress FILE...
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: decompress FILE...")
		os.Exit(2)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "decompress: %v\n", err)
		os.Exit(1)
	}
}

func run(paths []string) error {
	var format string
	var in, out int64
	var elapsed time.Duration
	for _, p := range paths {
		f, n, u, d, err := one(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if format != "" && format != f {
			return fmt.Errorf("%s is %s, the files before it %s: measure one format at a time", p, f, format)
		}
		format = f
		in, out, elapsed = in+n, out+u, elapsed+d
	}
	fmt.Printf("format=%s\ncompressed_bytes=%d\nuncompressed_bytes=%d\nseconds=%.3f\nmb_per_second=%.1f\n",
		format, in, out, elapsed.Seconds(), float64(out)/1e6/elapsed.Seconds())
	return nil
}

// one decompresses the file at p to io.Discard and returns its format, its
// size, the uncompressed size and the time spent (the file is read into
// memory first, so the time is the decompressor's alone).
func one(p string) (string, int64, int64, time.Duration, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return "", 0, 0, 0, err
	}
	start := time.Now()
	var r io.Reader
	var format string
	switch {
	case bytes.HasPrefix(data, []byte{0x1f, 0x8b}):
		format = "gzip"
		zr, err := gzip.NewReader(bufio.NewReaderSize(bytes.NewReader(data), 64<<10))
		if err != nil {
			return "", 0, 0, 0, err
		}
		defer zr.Close()
		r = zr
	case bytes.HasPrefix(data, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		format = "zstd"
		zr, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<32))
		if err != nil {
			return "", 0, 0, 0, err
		}
		defer zr.Close()
		r = zr
	default:
		return "", 0, 0, 0, fmt.Errorf("neither gzip nor zstd")
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return "", 0, 0, 0, err
	}
	return format, int64(len(data)), n, time.Since(start), nil
}
