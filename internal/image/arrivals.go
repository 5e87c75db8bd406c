package image

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/unpack"
)

// errNotFetched fails the opening of a blob whose download did not
// complete: the pull has already failed, with the download's error.
var errNotFetched = errors.New("the download of the image failed")

// arrivals is the unpack's view of the content store during a pull: a
// layer blob opens once the pull has committed it (remote reports it Done),
// so each layer unpacks as soon as its blob is verified while the later
// ones download. Nothing is read that is not in the store, verified.
type arrivals struct {
	cs *content.Store

	mu    sync.Mutex
	in    map[digest.Digest]chan struct{} // closed when the blob is committed
	ended chan struct{}                   // closed when the fetch returned
	err   error                           // the fetch's error, set before ended closes
}

var _ unpack.BlobOpener = (*arrivals)(nil)

func newArrivals(cs *content.Store) *arrivals {
	return &arrivals{cs: cs, in: map[digest.Digest]chan struct{}{}, ended: make(chan struct{})}
}

func (a *arrivals) ch(d digest.Digest) chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	c, ok := a.in[d]
	if !ok {
		c = make(chan struct{})
		a.in[d] = c
	}
	return c
}

// arrived records that the blob d is committed in the store.
func (a *arrivals) arrived(d digest.Digest) {
	c := a.ch(d)
	a.mu.Lock()
	defer a.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

// finish records the end of the fetch, with its error: every blob is in the
// store if err is nil, and no more will come otherwise.
func (a *arrivals) finish(err error) {
	a.err = err
	close(a.ended)
}

// Open waits until the blob d is committed, the fetch ends or ctx ends, and
// opens it.
func (a *arrivals) Open(ctx context.Context, d digest.Digest) (*os.File, error) {
	select {
	case <-a.ch(d):
	case <-a.ended:
		if a.err != nil {
			select {
			case <-a.ch(d): // it arrived before the failure
			default:
				return nil, fmt.Errorf("blob %s: %w", d, errNotFetched)
			}
		}
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return a.cs.Open(ctx, d)
}

// firstError keeps the first error of the fetch and the unpack that run
// side by side: the other one's error is only a consequence of it.
type firstError struct {
	mu  sync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}
