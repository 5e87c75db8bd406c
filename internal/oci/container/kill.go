package container

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// ParseSignal accepts "KILL", "SIGKILL", "sigkill" and "9".
func ParseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return 0, fmt.Errorf("signal %q: out of range: %w", s, errdefs.ErrInvalidArgument)
		}
		return unix.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	// real-time signals: SIGRTMIN+n, SIGRTMAX-n
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN"); ok {
		n := 0
		if rest != "" {
			v, err := strconv.Atoi(strings.TrimPrefix(rest, "+"))
			if err != nil || !strings.HasPrefix(rest, "+") {
				return 0, fmt.Errorf("unknown signal %q: %w", s, errdefs.ErrInvalidArgument)
			}
			n = v
		}
		if 34+n <= 64 {
			return unix.Signal(34 + n), nil
		}
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX"); ok {
		n := 0
		if rest != "" {
			v, err := strconv.Atoi(strings.TrimPrefix(rest, "-"))
			if err != nil || !strings.HasPrefix(rest, "-") {
				return 0, fmt.Errorf("unknown signal %q: %w", s, errdefs.ErrInvalidArgument)
			}
			n = v
		}
		if 64-n >= 34 {
			return unix.Signal(64 - n), nil
		}
	}
	return 0, fmt.Errorf("unknown signal %q: %w", s, errdefs.ErrInvalidArgument)
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup. Only a created, running or paused container can be signalled.
func (r *Runtime) Kill(id string, sig unix.Signal, all bool) error {
	c, err := r.Store.Load(id)
	if err != nil {
		return err
	}
	st := r.status(c)
	if st == state.Stopped {
		return fmt.Errorf("container %q is stopped: container not running: %w", id, errdefs.ErrFailedPrecondition)
	}
	if all && len(c.CgroupPaths) > 0 {
		cg, err := cgroup.Load(c.CgroupPaths)
		if err != nil {
			return fmt.Errorf("kill --all %q: %w", id, err)
		}
		pids, err := cg.Pids()
		if err != nil {
			return fmt.Errorf("kill --all %q: %w", id, err)
		}
		if st == state.Paused && (sig == unix.SIGKILL || sig == unix.SIGTERM) {
			defer cg.Thaw()
		}
		for _, p := range pids {
			if err := unix.Kill(p, sig); err != nil && err != unix.ESRCH {
				return fmt.Errorf("kill %d: %w", p, err)
			}
		}
		return nil
	}
	if err := signalInit(c, sig); err != nil {
		return fmt.Errorf("kill container %q: %w", id, err)
	}
	return nil
}

// signalInit signals the init through a pidfd, so a pid reused after the
// init died is never hit.
func signalInit(c *state.Container, sig unix.Signal) error {
	pfd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		if err == unix.ESRCH {
			return fmt.Errorf("init %d is gone: container not running: %w", c.Pid, errdefs.ErrFailedPrecondition)
		}
		return unix.Kill(c.Pid, sig)
	}
	defer unix.Close(pfd)
	if !state.ProcessAlive(c.Pid, c.PidStartTime) {
		return fmt.Errorf("init %d is gone: container not running: %w", c.Pid, errdefs.ErrFailedPrecondition)
	}
	return unix.PidfdSendSignal(pfd, sig, nil, 0)
}
