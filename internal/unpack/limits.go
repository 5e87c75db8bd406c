package unpack

import (
	"fmt"
	"io"
	"math"
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

// Limits bound the uncompressed size of layers and, on its own, the file
// data applying them writes (the size of every regular file, a sparse
// file's logical size, and every file copied up from a lower layer for a
// hardlink), which may exceed what the tar stream holds. A zero field takes
// its default; a negative one disables that bound.
type Limits struct {
	// MaxLayerSize bounds the uncompressed bytes of one layer, and the
	// file data it writes.
	MaxLayerSize int64
	// MaxImageSize bounds the uncompressed bytes of every layer one Unpack
	// applies, and the file data they write (layers already unpacked, and
	// skipped, do not count).
	MaxImageSize int64
	// MaxRatio bounds uncompressed/compressed bytes of a layer, and file
	// data written/compressed bytes, once they have passed RatioFloor (gzip
	// cannot exceed about 1030:1; zstd can).
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

// usage is what the layers of one Unpack call have read and written so
// far (layers may be applied at once).
type usage struct {
	read, written atomic.Int64
}

// limitReader bounds one layer. It counts the uncompressed tar read
// through it, and the file data applying the layer writes (charge, the
// archive.Charge of the apply): regular files' sizes, before they are
// created, and files copied up for hardlinks to lower layers. Each is held
// to the limits on its own: a file's data is both read and written, and
// counting it twice would halve the limits, but what is written exceeds
// what is read where the tar stream holds less than the file (a sparse
// file's holes) or nothing of it (a copy-up). The read or charge that takes
// either past a limit fails with an ErrInvalidArgument error.
type limitReader struct {
	r          io.Reader
	lim        Limits
	compressed int64
	n          int64 // bytes of this layer read
	written    int64 // bytes of file data this layer writes
	image      *usage
	err        error // of Read
}

func (l *limitReader) Read(b []byte) (int, error) {
	if l.err != nil {
		return 0, l.err
	}
	n, err := l.r.Read(b)
	l.n += int64(n)
	if l.err = l.check(readBytes, l.n, l.image.read.Add(int64(n))); l.err != nil {
		return 0, l.err
	}
	return n, err
}

// charge counts n bytes of file data about to be written. n comes from a
// tar header, up to math.MaxInt64: the counts saturate rather than wrap.
func (l *limitReader) charge(n int64) error {
	l.written = addSat(l.written, n)
	return l.check(writtenBytes, l.written, addSatAtomic(&l.image.written, n))
}

// addSat is a+n (n >= 0), or math.MaxInt64 if that overflows.
func addSat(a, n int64) int64 {
	if a > math.MaxInt64-n {
		return math.MaxInt64
	}
	return a + n
}

// addSatAtomic is v.Add(n) with addSat.
func addSatAtomic(v *atomic.Int64, n int64) int64 {
	for {
		old := v.Load()
		if sum := addSat(old, n); v.CompareAndSwap(old, sum) {
			return sum
		}
	}
}

// uncount takes back from the image what the layer counted, for a layer
// whose extraction is undone to be applied again.
func (l *limitReader) uncount() {
	l.image.read.Add(-l.n)
	l.image.written.Add(-l.written)
}

// measure names what a count is, in errors.
type measure struct{ layer, image, ratio string }

var (
	readBytes    = measure{"uncompressed layer exceeds", "uncompressed layers exceed", "expands past"}
	writtenBytes = measure{"file data of the layer exceeds", "file data of the layers exceeds", "writes file data past"}
)

// check holds a layer's count and the image's to the limits.
func (l *limitReader) check(m measure, layer, image int64) error {
	switch {
	case l.lim.MaxLayerSize >= 0 && layer > l.lim.MaxLayerSize:
		return fmt.Errorf("%s the limit of %d bytes per layer: %w", m.layer, l.lim.MaxLayerSize, errdefs.ErrInvalidArgument)
	case l.lim.MaxImageSize >= 0 && image > l.lim.MaxImageSize:
		return fmt.Errorf("%s the limit of %d bytes per image: %w", m.image, l.lim.MaxImageSize, errdefs.ErrInvalidArgument)
	case l.lim.MaxRatio >= 0 && l.lim.RatioFloor >= 0 && layer > l.lim.RatioFloor && layer > l.lim.MaxRatio*max(l.compressed, 1):
		return fmt.Errorf("layer of %d bytes %s %d bytes, more than %d times its size (a decompression bomb?): %w",
			l.compressed, m.ratio, layer, l.lim.MaxRatio, errdefs.ErrInvalidArgument)
	}
	return nil
}
