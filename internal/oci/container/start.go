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
	return r.start(ctx, id, nil)
}

// start is Start; run passes the container its create just saved as c,
// so that the state is not read back (a state removed meanwhile still
// fails the lock).
func (r *Runtime) start(ctx context.Context, id string, c *state.Container) error {
	unlock, err := r.Store.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	if c == nil {
		if c, err = r.Store.Load(id); err != nil {
			return err
		}
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
// init's end of the exec fifo is close-on-exec, so once it has gone, the
// fifo has no reader left and poll(2) reports POLLERR on our write end
// (polled for no event, it wakes on that alone, at once, where polling by
// writes with growing sleeps noticed it up to ~0.7 ms late). Until then a
// signal sent right after "start" would reach gantry-oci's own init
// rather than the user's process (a stop at once after a start then
// killed the wrong program). The wait is bounded.
func waitExecuted(f *os.File) {
	deadline := time.Now().Add(5 * time.Second)
	rc, err := f.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) {
		for {
			left := time.Until(deadline)
			if left <= 0 {
				return
			}
			fds := []unix.PollFd{{Fd: int32(fd)}}
			n, err := unix.Poll(fds, int(left/time.Millisecond)+1)
			if err == unix.EINTR {
				continue
			}
			if err != nil || n > 0 {
				return // POLLERR: no reader left (or the init is gone)
			}
		}
	})
}
