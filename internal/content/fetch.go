package content

import (
	"context"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Fetch makes sure the blob desc is in the store. If it is not, Fetch opens
// a Writer on the ingest "fetch-<digest>" (resuming an earlier, interrupted
// one) and calls fetch, which writes the blob's bytes from w.Offset() on;
// Fetch then commits the ingest unless fetch already did. When fetch fails,
// the ingest stays for a resume if it holds bytes, and is removed if empty. Concurrent callers
// for one digest share a single run of fetch (single flight) and its result
// when it succeeds; a failed run is forgotten, so the next caller tries
// again. The flight is keyed by digest only, so the run a caller joins may
// read from another source (another registry, mirror or namespace): a waiter
// whose own context is still live does not inherit that run's failure (a
// cut, a cancellation, a hostile source's digest mismatch) but tries again,
// so that its own fetch runs; a caller whose own fetch ran gets its result.
func (s *Store) Fetch(ctx context.Context, desc ocispec.Descriptor, fetch func(w *Writer) error) error {
	if err := validateDigest(desc.Digest); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	for attempt := 0; ; attempt++ {
		if _, err := s.Info(ctx, desc.Digest); err == nil {
			return nil
		}
		// ran is set only when this caller's fetch is the one the flight
		// runs; reading it after the result arrives is ordered by ch.
		ran := false
		ch := s.flights.DoChan(string(desc.Digest), func() (any, error) {
			ran = true
			return nil, s.fetchOnce(ctx, desc, fetch)
		})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-ch:
			if r.Err != nil && !ran && ctx.Err() == nil && attempt < maxFetchJoins {
				continue
			}
			return r.Err
		}
	}
}

// maxFetchJoins bounds how many failed runs of other callers one Fetch
// waits out before it returns the last failure.
const maxFetchJoins = 3

func (s *Store) fetchOnce(ctx context.Context, desc ocispec.Descriptor, fetch func(w *Writer) error) error {
	if _, err := s.Info(ctx, desc.Digest); err == nil {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	w, err := s.Writer(ctx, "fetch-"+string(desc.Digest), desc)
	if err != nil {
		return err
	}
	defer w.Close()
	if err := fetch(w); err != nil {
		if !w.done && w.offset == 0 {
			// Nothing to resume (a source that sent nothing, or bytes
			// that were dropped): leave no empty ingest behind.
			w.discard()
		}
		return err
	}
	if w.done {
		if w.dgst == "" {
			return fmt.Errorf("fetch %s: writer closed without commit: %w", desc.Digest, errdefs.ErrFailedPrecondition)
		}
		return nil
	}
	return w.Commit(ctx)
}
