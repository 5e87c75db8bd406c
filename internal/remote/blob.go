package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// fetchBlob makes sure desc is in cs: concurrent pulls of one digest share a
// download (content.Store.Fetch), an interrupted ingest resumes with a Range
// request, and each endpoint that can pull is tried in order.
func (p *puller) fetchBlob(ctx context.Context, desc ocispec.Descriptor) error {
	if err := p.lease(ctx, desc.Digest); err != nil {
		err = fmt.Errorf("blob %s: %w", desc.Digest, err)
		p.report(Progress{Digest: desc.Digest, MediaType: desc.MediaType, Total: desc.Size, Err: err})
		return err
	}
	if _, err := p.cs.Info(ctx, desc.Digest); err == nil {
		p.report(Progress{Digest: desc.Digest, MediaType: desc.MediaType, Total: desc.Size, Offset: desc.Size, Done: true})
		return nil
	}
	err := p.cs.Fetch(ctx, desc, func(w *content.Writer) error {
		return p.each(ctx, CapabilityPull, func(c *client) error {
			return p.download(ctx, c, w, desc)
		})
	})
	if err != nil {
		err = fmt.Errorf("blob %s: %w", desc.Digest, err)
		p.report(Progress{Digest: desc.Digest, MediaType: desc.MediaType, Total: desc.Size, Err: err})
		return err
	}
	p.report(Progress{Digest: desc.Digest, MediaType: desc.MediaType, Total: desc.Size, Offset: desc.Size, Done: true})
	return nil
}

// download writes desc from c into w, from w.Offset() on, retrying cut or
// failed requests with backoff; it checks the digest before returning so a
// lying endpoint's bytes are dropped and the next endpoint is tried. A
// mismatch after an attempt that resumed the ingest (offset > 0) may be the
// fault of the prefix alone, written by another source (a mirror that cut
// off, an earlier pull of the same digest from another registry): the ingest
// is then restarted from 0 on the same endpoint, once, and only a mismatch
// of bytes that all came from c fails.
func (p *puller) download(ctx context.Context, c *client, w *content.Writer, desc ocispec.Descriptor) error {
	refetched := false
	for attempt := 0; ; attempt++ {
		from := w.Offset()
		err := c.blob(ctx, w, desc, func(off int64) {
			p.report(Progress{Digest: desc.Digest, MediaType: desc.MediaType, Total: desc.Size, Offset: off})
		})
		if err == nil {
			if got := w.Digest(); got != desc.Digest {
				if from > 0 && !refetched {
					if err := w.Truncate(0); err != nil {
						return err
					}
					refetched = true
					attempt-- // the refetch does not use up a retry
					continue
				}
				_ = w.Truncate(0)
				return fmt.Errorf("blob from %s: content has digest %s, expected %s: %w", c.base, got, desc.Digest, errdefs.ErrInvalidArgument)
			}
			return nil
		}
		after, ok := isRetryable(err)
		if !ok || attempt >= p.opts.MaxRetries {
			return err
		}
		if err := sleep(ctx, backoff(attempt, after)); err != nil {
			return err
		}
	}
}

// blob GETs the blob from w.Offset() on.
func (c *client) blob(ctx context.Context, w *content.Writer, desc ocispec.Descriptor, progress func(int64)) error {
	off := w.Offset()
	if off >= desc.Size {
		if off > desc.Size {
			if err := w.Truncate(0); err != nil {
				return err
			}
			off = 0
		} else {
			return nil
		}
	}
	u := fmt.Sprintf("%s/v2/%s/blobs/%s", c.base, c.repo, desc.Digest)
	rctx, kick, stop := idleCtx(ctx, c.idle)
	defer stop()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	if off > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", off))
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &retryable{fmt.Errorf("GET %s: %w", u, idleErr(ctx, rctx, err)), 0}
	}
	defer resp.Body.Close()
	kick()
	switch resp.StatusCode {
	case http.StatusOK:
		if off > 0 {
			// The server ignored the Range: start over.
			if err := w.Truncate(0); err != nil {
				return err
			}
			off = 0
		}
	case http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != off {
			if err := w.Truncate(0); err != nil {
				return err
			}
			return &retryable{fmt.Errorf("GET %s: Content-Range %q does not start at %d", u, resp.Header.Get("Content-Range"), off), 0}
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if err := w.Truncate(0); err != nil {
			return err
		}
		return &retryable{fmt.Errorf("GET %s: range from %d not satisfiable", u, off), 0}
	default:
		return c.statusError(resp, "blob")
	}
	progress(off)
	pw := &progressWriter{w: w, report: progress}
	_, err = io.Copy(pw, io.LimitReader(&kickReader{r: resp.Body, kick: kick}, desc.Size-off+1))
	if err != nil {
		if errdefs.IsInvalidArgument(err) {
			_ = w.Truncate(0)
			return fmt.Errorf("blob from %s: more than the %d bytes the descriptor says: %w", c.base, desc.Size, errdefs.ErrInvalidArgument)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ce contentWriteError
		if errors.As(err, &ce) {
			return err
		}
		return &retryable{fmt.Errorf("GET %s: cut at %d of %d bytes: %w", u, w.Offset(), desc.Size, idleErr(ctx, rctx, err)), 0}
	}
	progress(w.Offset())
	if w.Offset() < desc.Size {
		return &retryable{fmt.Errorf("GET %s: body ended at %d of %d bytes: %w", u, w.Offset(), desc.Size, io.ErrUnexpectedEOF), 0}
	}
	return nil
}

// contentWriteError marks a failure to write into the store (ENOSPC...),
// which another attempt would not fix.
type contentWriteError struct{ error }

func (e contentWriteError) Unwrap() error { return e.error }

type progressWriter struct {
	w      *content.Writer
	report func(int64)
	last   time.Time
}

func (p *progressWriter) Write(b []byte) (int, error) {
	n, err := p.w.Write(b)
	if err != nil {
		if errdefs.IsInvalidArgument(err) {
			return n, err
		}
		return n, contentWriteError{err}
	}
	if now := time.Now(); now.Sub(p.last) > 100*time.Millisecond {
		p.last = now
		p.report(p.w.Offset())
	}
	return n, nil
}

// contentRangeStart parses "bytes START-END/TOTAL".
func contentRangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	var start, end int64
	if _, err := fmt.Sscanf(rest, "%d-%d", &start, &end); err != nil {
		return 0, false
	}
	return start, true
}

func (p *puller) report(pr Progress) {
	if p.opts.Progress == nil {
		return
	}
	pr.Ref = p.ref.String()
	p.progMu.Lock()
	defer p.progMu.Unlock()
	p.opts.Progress(pr)
}
