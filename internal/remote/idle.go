package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// DefaultIdleTimeout is how long a request may receive nothing (no response
// headers, no body bytes) before it is abandoned and retried.
const DefaultIdleTimeout = 60 * time.Second

// errIdle is the cause of a request abandoned for silence.
var errIdle = errors.New("registry sent nothing")

func (o *Options) idleTimeout() time.Duration {
	if o.IdleTimeout > 0 {
		return o.IdleTimeout
	}
	return DefaultIdleTimeout
}

// idleCtx derives a request context from ctx that is cancelled when kick is
// not called for d. stop releases it.
func idleCtx(ctx context.Context, d time.Duration) (rctx context.Context, kick func(), stop func()) {
	rctx, cancel := context.WithCancelCause(ctx)
	cause := fmt.Errorf("%w for %s: %w", errIdle, d, errdefs.ErrUnavailable)
	t := time.AfterFunc(d, func() { cancel(cause) })
	return rctx, func() { t.Reset(d) }, func() { t.Stop(); cancel(nil) }
}

// idleErr replaces err by the idle timeout that caused it, if one did
// (rctx was abandoned while ctx is live).
func idleErr(ctx, rctx context.Context, err error) error {
	if ctx.Err() == nil && rctx.Err() != nil {
		if c := context.Cause(rctx); errors.Is(c, errIdle) {
			return c
		}
	}
	return err
}

// kickReader calls kick each time bytes arrive.
type kickReader struct {
	r    io.Reader
	kick func()
}

func (k *kickReader) Read(b []byte) (int, error) {
	n, err := k.r.Read(b)
	if n > 0 {
		k.kick()
	}
	return n, err
}
