package container

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// Event is one JSON line of "events", shaped like runc's: Type is "stats"
// (Data is a *cgroup.Stats) or "oom" (no Data).
type Event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	Data any    `json:"data,omitempty"`
}

// Stats reads the counters of a container's cgroup. The container must not
// be stopped.
func (r *Runtime) Stats(id string) (*cgroup.Stats, error) {
	c, cg, err := r.live(id, "stats")
	if err != nil {
		return nil, err
	}
	s, err := cg.Stats()
	if err != nil {
		return nil, fmt.Errorf("stats of container %q: %w", c.ID, err)
	}
	return s, nil
}

// live loads id and its cgroup, refusing a stopped container.
func (r *Runtime) live(id, verb string) (*state.Container, cgroup.Manager, error) {
	c, err := r.Store.Load(id)
	if err != nil {
		return nil, nil, err
	}
	if st := r.status(c); st == state.Stopped {
		return nil, nil, fmt.Errorf("%s of container %q: it is stopped: %w", verb, id, errdefs.ErrFailedPrecondition)
	}
	cg, err := containerCgroup(c)
	if err != nil {
		return nil, nil, fmt.Errorf("%s of container %q: %w", verb, id, err)
	}
	return c, cg, nil
}

// oomPoll is how often the OOM kill count is read where the kernel offers
// no notification we use (cgroup v2), and how often the init is checked
// when no pidfd is available.
const oomPoll = 250 * time.Millisecond

// Events emits a "stats" event every interval and an "oom" event each time
// the OOM killer acts in the container's cgroup, until the container stops
// (Events then returns nil), ctx ends or emit fails. On cgroup v1 OOM
// events come from an eventfd registered on memory.oom_control (as runc);
// elsewhere from a rise of the cgroup's oom_kill count. A failed stats read
// is logged and skipped, as in runc.
func (r *Runtime) Events(ctx context.Context, id string, interval time.Duration, emit func(*Event) error) error {
	if interval <= 0 {
		return fmt.Errorf("--interval %s: must be positive: %w", interval, errdefs.ErrInvalidArgument)
	}
	c, cg, err := r.live(id, "events")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	exited := watchExit(ctx, c)
	oom, oomFromEventfd := r.watchOOM(ctx, cg)
	var lastKills uint64
	if !oomFromEventfd {
		lastKills, _ = cg.OOMKillCount()
	}
	var pollC <-chan time.Time
	if !oomFromEventfd {
		t := time.NewTicker(oomPoll)
		defer t.Stop()
		pollC = t.C
	}
	stats := time.NewTicker(interval)
	defer stats.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-exited:
			// report an OOM kill that ended the container before leaving
			if !oomFromEventfd {
				if n, err := cg.OOMKillCount(); err == nil && n > lastKills {
					return emit(&Event{Type: "oom", ID: id})
				}
			}
			return nil
		case <-oom:
			if err := emit(&Event{Type: "oom", ID: id}); err != nil {
				return err
			}
		case <-pollC:
			n, err := cg.OOMKillCount()
			if err != nil || n <= lastKills {
				continue
			}
			lastKills = n
			if err := emit(&Event{Type: "oom", ID: id}); err != nil {
				return err
			}
		case <-stats.C:
			s, err := cg.Stats()
			if err != nil {
				r.Log.Warn("events: read stats", "id", id, "error", err)
				continue
			}
			if err := emit(&Event{Type: "stats", ID: id, Data: s}); err != nil {
				return err
			}
		}
	}
}

// watchExit returns a channel closed when c's init exits: a pidfd polled
// for readability, or /proc polled when pidfds are unavailable.
func watchExit(ctx context.Context, c *state.Container) <-chan struct{} {
	done := make(chan struct{})
	pfd, err := unix.PidfdOpen(c.Pid, 0)
	if err == nil && !state.ProcessAlive(c.Pid, c.PidStartTime) {
		// the pid was reused after the init died: it is gone already
		unix.Close(pfd)
		close(done)
		return done
	}
	go func() {
		defer close(done)
		if err == nil {
			defer unix.Close(pfd)
			fds := []unix.PollFd{{Fd: int32(pfd), Events: unix.POLLIN}}
			for ctx.Err() == nil {
				n, perr := unix.Poll(fds, int(oomPoll/time.Millisecond))
				if perr == unix.EINTR || (perr == nil && n == 0) {
					continue
				}
				return // readable (exited) or poll failed: stop either way
			}
			return
		}
		t := time.NewTicker(oomPoll)
		defer t.Stop()
		for state.ProcessAlive(c.Pid, c.PidStartTime) {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return done
}

// watchOOM registers a v1 OOM eventfd on the cgroup's memory.oom_control.
// It returns a channel that receives once per notification and true, or
// false when the host has no v1 memory cgroup (or registration failed) so
// the caller polls the OOM kill count instead.
func (r *Runtime) watchOOM(ctx context.Context, cg cgroup.Manager) (<-chan struct{}, bool) {
	dir := cg.Paths()["memory"]
	if dir == "" {
		return nil, false
	}
	efd, err := registerOOMEventfd(dir)
	if err != nil {
		r.Log.Debug("events: oom eventfd unavailable, polling oom_kill", "error", err)
		return nil, false
	}
	ch := make(chan struct{}, 16)
	go func() {
		defer unix.Close(efd)
		buf := make([]byte, 8)
		fds := []unix.PollFd{{Fd: int32(efd), Events: unix.POLLIN}}
		for ctx.Err() == nil {
			n, err := unix.Poll(fds, int(oomPoll/time.Millisecond))
			if err == unix.EINTR || (err == nil && n == 0) {
				continue
			}
			if err != nil {
				return
			}
			if _, err := unix.Read(efd, buf); err != nil {
				if err == unix.EAGAIN {
					continue
				}
				return
			}
			// the eventfd also fires when the cgroup is removed
			if _, err := os.Stat(filepath.Join(dir, "memory.oom_control")); err != nil {
				return
			}
			for i := uint64(0); i < binary.NativeEndian.Uint64(buf); i++ {
				select {
				case ch <- struct{}{}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return ch, true
}

// registerOOMEventfd asks the v1 memory controller to signal an eventfd on
// every OOM of the cgroup at dir ("<eventfd> <oom_control fd>" written to
// cgroup.event_control).
func registerOOMEventfd(dir string) (int, error) {
	ctl, err := os.Open(filepath.Join(dir, "memory.oom_control"))
	if err != nil {
		return -1, fmt.Errorf("open memory.oom_control: %w", err)
	}
	defer ctl.Close()
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return -1, fmt.Errorf("eventfd: %w", err)
	}
	reg := strconv.Itoa(efd) + " " + strconv.Itoa(int(ctl.Fd()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.event_control"), []byte(reg), 0); err != nil {
		unix.Close(efd)
		return -1, fmt.Errorf("register oom eventfd: %w", err)
	}
	return efd, nil
}
