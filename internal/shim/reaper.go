package shim

import (
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/ociclient"
)

// reaper reaps every child of the shim (it is a child subreaper, so the
// container's init and exec processes become its children once the runtime
// that started them exits). Runtime processes started through it (it is the
// ociclient.Monitor) get their status on a channel; every other exit goes
// to onExit.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan int
	onExit  func(pid, status int)
}

func newReaper(onExit func(pid, status int)) *reaper {
	return &reaper{waiters: map[int]chan int{}, onExit: onExit}
}

// becomeSubreaper makes orphaned descendants children of this process.
func becomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}

// run reaps on every SIGCHLD until the process exits.
func (r *reaper) run() {
	ch := make(chan os.Signal, 32)
	signal.Notify(ch, syscall.SIGCHLD)
	for {
		r.reap()
		<-ch
	}
}

type exit struct{ pid, status int }

func (r *reaper) reap() {
	var others []exit
	r.mu.Lock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		if pid <= 0 || err != nil {
			break
		}
		if !ws.Exited() && !ws.Signaled() {
			continue
		}
		code := ociclient.ExitCode(syscall.WaitStatus(ws))
		if w, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			w <- code
			continue
		}
		others = append(others, exit{pid, code})
	}
	r.mu.Unlock()
	for _, e := range others {
		r.onExit(e.pid, e.status)
	}
}

// Start implements ociclient.Monitor: the pid is registered before the
// reaper can see it exit.
func (r *reaper) Start(cmd *exec.Cmd) (<-chan int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ch := make(chan int, 1)
	r.waiters[cmd.Process.Pid] = ch
	return ch, nil
}

// Wait implements ociclient.Monitor.
func (r *reaper) Wait(cmd *exec.Cmd, ch <-chan int) (int, error) {
	code := <-ch
	cmd.Process.Release()
	return code, nil
}
