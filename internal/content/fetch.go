package content

import (
	"context"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Fetch makes sure the blob desc is in the store. If it is not, Fetch opens
// a Writer on the ingest "fetch-<digest>" (resuming an earlier, interrupted
// one) and calls fetch, which writes the blob's bytes from w.Offset() on;
// Fetch then commits the ingest unless fetch already did. When fetch fails,
// the ingest stays for a resume if it holds bytes, and is removed if empty. Concurrent callers
// for one digest share a single run of fetch (single flight) and its result;
// a failed run is forgotten, so the next caller tries again. A waiter whose
// own context is still live retries when the run it waited for was cancelled
// by its first caller's context.
func (s *Store) Fetch(ctx context.Context, desc ocispec.Descriptor, fetch func(w *Writer) error) error {
	if err := validateDigest(desc.Digest); err != nil {
		return fmt.Errorf("fetch: %w", err)
	}
	for attempt := 0; ; attempt++ {
		if _, err := s.Info(ctx, desc.Digest); err == nil {
			return nil
		}
		ch := s.flights.DoChan(string(desc.Digest), func() (any, error) {
			return nil, s.fetchOnce(ctx, desc, fetch)
		})
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-ch:
			if r.Err != nil && r.Shared && ctx.Err() == nil && attempt < 3 &&
				(errors.Is(r.Err, context.Canceled) || errors.Is(r.Err, context.DeadlineExceeded)) {
				continue
			}
			return r.Err
		}
	}
}

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
