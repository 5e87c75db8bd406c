package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"

	"github.com/gantry-project/gantry/internal/errdefs"
)

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicBzip2 = []byte("BZh")
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// Compression names a detected stream format.
type Compression string

// The formats Detect reports.
const (
	Uncompressed Compression = "none"
	Gzip         Compression = "gzip"
	Zstd         Compression = "zstd"
	Bzip2        Compression = "bzip2"
	Xz           Compression = "xz"
)

// Detect names the compression of a stream that starts with header.
func Detect(header []byte) Compression {
	switch {
	case bytes.HasPrefix(header, magicGzip):
		return Gzip
	case bytes.HasPrefix(header, magicZstd):
		return Zstd
	case bytes.HasPrefix(header, magicBzip2):
		return Bzip2
	case bytes.HasPrefix(header, magicXz):
		return Xz
	}
	return Uncompressed
}

// Decompress sniffs the first bytes of r and returns the uncompressed
// stream: gzip and zstd (klauspost/compress), bzip2, or r itself. xz is
// refused with ErrNotImplemented. Close releases the decompressor, not r.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	header, err := br.Peek(len(magicXz))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read compression header: %w", err)
	}
	switch Detect(header) {
	case Gzip:
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("open gzip stream: %w", err)
		}
		return gz, nil
	case Zstd:
		d, err := zstd.NewReader(br, zstd.WithDecoderMaxMemory(1<<32))
		if err != nil {
			return nil, fmt.Errorf("open zstd stream: %w", err)
		}
		return d.IOReadCloser(), nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), nil
	case Xz:
		return nil, fmt.Errorf("decompress xz stream: %w", errdefs.ErrNotImplemented)
	}
	return io.NopCloser(br), nil
}
