package unpack

import (
	"fmt"
	"io"
	"sync/atomic"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Default bounds on what layers may expand to. A manifest gives only the
// compressed size of a layer, so these are the only defence against a
// decompression bomb (a small blob that expands without bound).
const (
	DefaultMaxLayerSize = 32 << 30 // uncompressed bytes per layer
	DefaultMaxImageSize = 64 << 30 // uncompressed bytes per Unpack call
	DefaultMaxRatio     = 1000     // uncompressed:compressed, past RatioFloor
	DefaultRatioFloor   = 1 << 30  // bytes a layer may expand to before MaxRatio applies
)

// Limits bound the uncompressed size of layers. A zero field takes its
// default; a negative one disables that bound.
type Limits struct {
	// MaxLayerSize bounds the uncompressed bytes of one layer.
	MaxLayerSize int64
	// MaxImageSize bounds the uncompressed bytes of every layer one Unpack
	// applies (layers already unpacked, and skipped, do not count).
	MaxImageSize int64
	// MaxRatio bounds uncompressed/compressed bytes of a layer once it has
	// expanded past RatioFloor (gzip cannot exceed about 1030:1; zstd can).
	MaxRatio   int64
	RatioFloor int64
}

func (l Limits) withDefaults() Limits {
	def := func(v *int64, d int64) {
		if *v == 0 {
			*v = d
		}
	}
	def(&l.MaxLayerSize, DefaultMaxLayerSize)
	def(&l.MaxImageSize, DefaultMaxImageSize)
	def(&l.MaxRatio, DefaultMaxRatio)
	def(&l.RatioFloor, DefaultRatioFloor)
	return l
}

// limitReader counts the uncompressed bytes of one layer and fails, with an
// ErrInvalidArgument error, the read that takes them past a limit.
type limitReader struct {
	r          io.Reader
	lim        Limits
	compressed int64
	n          int64         // bytes of this layer
	image      *atomic.Int64 // bytes of every layer so far (layers may be applied at once)
	err        error
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(b)
	l.n += int64(n)
	image := l.image.Add(int64(n))
	switch {
	case l.lim.MaxLayerSize >= 0 && l.n > l.lim.MaxLayerSize:
		l.err = fmt.Errorf("uncompressed layer exceeds the limit of %d bytes per layer: %w", l.lim.MaxLayerSize, errdefs.ErrInvalidArgument)
	case l.lim.MaxImageSize >= 0 && image > l.lim.MaxImageSize:
		l.err = fmt.Errorf("uncompressed layers exceed the limit of %d bytes per image: %w", l.lim.MaxImageSize, errdefs.ErrInvalidArgument)
	case l.lim.MaxRatio >= 0 && l.lim.RatioFloor >= 0 && l.n > l.lim.RatioFloor && l.n > l.lim.MaxRatio*max(l.compressed, 1):
		l.err = fmt.Errorf("layer of %d bytes expands past %d bytes, more than %d times its size (a decompression bomb?): %w",
			l.compressed, l.n, l.lim.MaxRatio, errdefs.ErrInvalidArgument)
	}
	if l.err != nil {
		return 0, l.err
	}
	return n, err
}
