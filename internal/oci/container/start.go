package container

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/hook"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// Start lets a created container's init execute the user's process, then
// runs the poststart hooks (whose failures are logged, as the spec says).
func (r *Runtime) Start(ctx context.Context, id string) error {
	unlock, err := r.Store.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := r.Store.Load(id)
	if err != nil {
		return err
	}
	if st := r.status(c); st != state.Created {
		return fmt.Errorf("container %q is %s, not created: %w", id, st, errdefs.ErrFailedPrecondition)
	}
	noProcess := c.Spec == nil || c.Spec.Process == nil
	f, err := os.OpenFile(r.Store.FifoPath(id), os.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENXIO) {
			return fmt.Errorf("container %q: init is gone: %w", id, errdefs.ErrFailedPrecondition)
		}
		return fmt.Errorf("open exec fifo of %q: %w", id, err)
	}
	_, err = f.Write([]byte{0})
	if err != nil {
		f.Close()
		return fmt.Errorf("start container %q: %w", id, err)
	}
	if !noProcess {
		waitExecuted(f)
	}
	f.Close()
	// Removing the fifo is what marks the container started (the status is
	// derived from it), so state.json is not rewritten on the start path.
	os.Remove(r.Store.FifoPath(id))
	if noProcess {
		// The init of a process-less container exits when woken: the
		// container can never run, so it goes to stopped.
		return fmt.Errorf("start container %q: config.json has no process: %w", id, errdefs.ErrFailedPrecondition)
	}
	if c.Spec.Hooks != nil {
		st := hookState(c.ID, c.Spec, c.Bundle, c.Pid, state.Running)
		for i, h := range c.Spec.Hooks.Poststart {
			if err := hook.Run(ctx, "poststart", i, h, st); err != nil {
				r.Log.Warn("poststart hook failed", "id", id, "error", err)
			}
		}
	}
	return nil
}

// waitExecuted returns once the init has executed the user's process: the
// init's end of the exec fifo is close-on-exec, so once it has gone, a
// write finds no reader (EPIPE). Until then a signal sent right after
// "start" would reach gantry-oci's own init rather than the user's process
// (a stop at once after a start then killed the wrong program). The extra
// bytes stay unread in the fifo, which is removed. The wait is bounded.
func waitExecuted(f *os.File) {
	deadline := time.Now().Add(5 * time.Second)
	for d := 100 * time.Microsecond; time.Now().Before(deadline); {
		if _, err := f.Write([]byte{0}); err != nil {
			return // EPIPE: no reader left (or the init is gone)
		}
		time.Sleep(d)
		if d < 5*time.Millisecond {
			d *= 2
		}
	}
}
