package shim

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/ociclient"
)

func (s *Shim) connect() shimapi.ConnectResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := shimapi.ConnectResponse{Version: shimapi.Version, Namespace: s.opts.Namespace, ID: s.opts.ID,
		Bundle: s.opts.Bundle, ShimPid: os.Getpid(), LogPath: s.opts.LogPath}
	if s.init != nil {
		r.Pid = s.init.pid
	}
	return r
}

func (s *Shim) start(ctx context.Context, r shimapi.StartRequest) (shimapi.StateResponse, error) {
	s.mu.Lock()
	p, err := s.lookup("")
	if err == nil && p.status != shimapi.StatusCreated {
		err = fmt.Errorf("start %s: container is %s, not created: %w", s.opts.ID, p.status, errdefs.ErrFailedPrecondition)
	}
	if err == nil && s.starting != nil {
		err = fmt.Errorf("start %s: already starting: %w", s.opts.ID, errdefs.ErrFailedPrecondition)
	}
	var starting chan struct{}
	if err == nil {
		starting = make(chan struct{})
		s.starting = starting
	}
	s.mu.Unlock()
	if err != nil {
		return shimapi.StateResponse{}, err
	}
	if r.HoldOutput {
		// As a create with Start and HoldOutput: the first attacher,
		// on its way, gets the output from its beginning.
		p.out.holdForAttacher()
	}
	err = s.rt.Start(ctx, s.opts.ID)
	if r.HoldOutput {
		if err != nil {
			p.out.release()
		} else {
			time.AfterFunc(AttachWait, p.out.release)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starting = nil
	close(starting)
	if err != nil {
		return shimapi.StateResponse{}, fmt.Errorf("start %s: %w", s.opts.ID, err)
	}
	if p.status == shimapi.StatusCreated {
		p.status = shimapi.StatusRunning
	}
	return p.state(s.opts.ID), nil
}

func (s *Shim) state(execID string) (shimapi.StateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.lookup(execID)
	if err != nil {
		return shimapi.StateResponse{}, err
	}
	return p.state(s.opts.ID), nil
}

func (s *Shim) kill(ctx context.Context, r shimapi.KillRequest) error {
	sig := syscall.Signal(r.Signal)
	if r.Signal <= 0 || r.Signal > 64 {
		return fmt.Errorf("kill: signal %d: %w", r.Signal, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	p, err := s.lookup(r.ExecID)
	if err != nil {
		s.mu.Unlock()
		return err
	}
	if r.ExecID != "" {
		defer s.mu.Unlock()
		if p.status == shimapi.StatusStopped || p.pidfd < 0 {
			return fmt.Errorf("kill exec %q: %w: %w", r.ExecID, errStopped, errdefs.ErrNotFound)
		}
		if err := unix.PidfdSendSignal(p.pidfd, sig, nil, 0); err != nil {
			return fmt.Errorf("kill exec %q: %w", r.ExecID, err)
		}
		return nil
	}
	stopped := p.status == shimapi.StatusStopped
	s.mu.Unlock()
	if stopped && !r.All {
		return fmt.Errorf("kill %s: %w: %w", s.opts.ID, errStopped, errdefs.ErrNotFound)
	}
	if err := s.rt.Kill(ctx, s.opts.ID, sig, r.All); err != nil {
		return fmt.Errorf("kill %s: %w", s.opts.ID, err)
	}
	return nil
}

func (s *Shim) exec(ctx context.Context, r shimapi.ExecRequest) (shimapi.StateResponse, error) {
	if !execIDPattern.MatchString(r.ExecID) {
		return shimapi.StateResponse{}, fmt.Errorf("exec id %q: want 1-64 of [A-Za-z0-9_.-]: %w", r.ExecID, errdefs.ErrInvalidArgument)
	}
	var sp specProcess
	if err := json.Unmarshal(r.Process, &sp); err != nil {
		return shimapi.StateResponse{}, fmt.Errorf("exec %q: process: %v: %w", r.ExecID, err, errdefs.ErrInvalidArgument)
	}
	s.mu.Lock()
	init, err := s.lookup("")
	if starting := s.starting; err == nil && init.status == shimapi.StatusCreated && starting != nil {
		// A start is in flight: the process may already run (a client
		// that saw its output execs at once); wait for the start's answer.
		s.mu.Unlock()
		select {
		case <-starting:
		case <-ctx.Done():
			return shimapi.StateResponse{}, fmt.Errorf("exec %q: %w", r.ExecID, ctx.Err())
		}
		s.mu.Lock()
		init, err = s.lookup("")
	}
	if err == nil && init.status != shimapi.StatusRunning {
		err = fmt.Errorf("exec %q: container %s is %s: %w", r.ExecID, s.opts.ID, init.status, errdefs.ErrFailedPrecondition)
	}
	if _, dup := s.execs[r.ExecID]; err == nil && dup {
		err = fmt.Errorf("exec %q: %w", r.ExecID, errdefs.ErrAlreadyExists)
	}
	p := &process{execID: r.ExecID, status: shimapi.StatusCreated, exited: make(chan struct{}), terminal: sp.Terminal, pidfd: -1, out: newOutputHub(true)}
	if err == nil {
		s.execs[r.ExecID] = p // reserve the id
	}
	s.mu.Unlock()
	if err != nil {
		return shimapi.StateResponse{}, err
	}
	fail := func(err error) (shimapi.StateResponse, error) {
		s.mu.Lock()
		delete(s.execs, r.ExecID)
		s.mu.Unlock()
		return shimapi.StateResponse{}, err
	}
	base := filepath.Join(s.opts.StateDir, "exec-"+r.ExecID)
	if err := os.WriteFile(base+".process.json", r.Process, 0o600); err != nil {
		return fail(fmt.Errorf("exec %q: write process.json: %w", r.ExecID, err))
	}
	defer os.Remove(base + ".process.json")
	io, console, after, err := s.stdio(p, r.Stdin)
	if err != nil {
		return fail(fmt.Errorf("exec %q: %w", r.ExecID, err))
	}
	_, err = s.rt.Exec(ctx, s.opts.ID, ociclient.ExecOptions{
		ProcessFile: base + ".process.json", Detach: true, PidFile: base + ".pid", ConsoleSocket: console, IO: io,
	})
	if err != nil {
		after(false)
		return fail(fmt.Errorf("exec %q: %w", r.ExecID, err))
	}
	if err := after(true); err != nil {
		return fail(fmt.Errorf("exec %q: %w", r.ExecID, err))
	}
	pid, err := ociclient.ReadPidFile(base + ".pid")
	os.Remove(base + ".pid")
	if err != nil {
		return fail(fmt.Errorf("exec %q: %w", r.ExecID, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.status = shimapi.StatusRunning
	s.register(p, pid)
	return p.state(s.opts.ID), nil
}

func (s *Shim) resizePty(r shimapi.ResizePtyRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.lookup(r.ExecID)
	if err != nil {
		return err
	}
	if p.console == nil {
		return fmt.Errorf("resize pty: process has no terminal: %w", errdefs.ErrFailedPrecondition)
	}
	return resize(p.console, r.Width, r.Height)
}

func (s *Shim) closeStdin(execID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.lookup(execID)
	if err != nil {
		return err
	}
	if p.console != nil {
		// A pty has no half-close: send the EOF character.
		_, err := p.console.Write([]byte{4})
		return err
	}
	if p.stdin != nil {
		err := p.stdin.Close()
		p.stdin = nil
		return err
	}
	return nil
}

// stdinOf returns where Attach writes.
func (s *Shim) stdinOf(execID string) (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, err := s.lookup(execID)
	if err != nil {
		return nil, err
	}
	if p.console != nil {
		return p.console, nil
	}
	if p.stdin == nil {
		return nil, fmt.Errorf("attach: stdin is closed or was not asked for: %w", errdefs.ErrFailedPrecondition)
	}
	return p.stdin, nil
}

func (s *Shim) setStatus(ctx context.Context, pause bool) error {
	s.mu.Lock()
	p, err := s.lookup("")
	s.mu.Unlock()
	if err != nil {
		return err
	}
	if pause {
		err = s.rt.Pause(ctx, s.opts.ID)
	} else {
		err = s.rt.Resume(ctx, s.opts.ID)
	}
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.status != shimapi.StatusStopped {
		if pause {
			p.status = shimapi.StatusPaused
		} else {
			p.status = shimapi.StatusRunning
		}
	}
	return nil
}

func (s *Shim) wait(ctx context.Context, execID string) (shimapi.StateResponse, error) {
	s.mu.Lock()
	p, err := s.lookup(execID)
	s.mu.Unlock()
	if err != nil {
		return shimapi.StateResponse{}, err
	}
	select {
	case <-p.exited:
	case <-ctx.Done():
		return shimapi.StateResponse{}, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return p.state(s.opts.ID), nil
}

// delete removes an exited exec, or the container: the runtime's delete,
// then the state directory; the shim then exits.
func (s *Shim) delete(ctx context.Context, r shimapi.DeleteRequest) (shimapi.StateResponse, bool, error) {
	s.mu.Lock()
	p, err := s.lookup(r.ExecID)
	if err != nil {
		s.mu.Unlock()
		return shimapi.StateResponse{}, false, err
	}
	if r.ExecID != "" {
		defer s.mu.Unlock()
		if p.status != shimapi.StatusStopped {
			return shimapi.StateResponse{}, false, fmt.Errorf("delete exec %q: still running: %w", r.ExecID, errdefs.ErrFailedPrecondition)
		}
		delete(s.execs, r.ExecID)
		os.Remove(filepath.Join(s.opts.StateDir, "exec-"+r.ExecID+".exit.json"))
		return p.state(s.opts.ID), false, nil
	}
	running := p.status != shimapi.StatusStopped
	if running && !r.Force {
		s.mu.Unlock()
		return shimapi.StateResponse{}, false, fmt.Errorf("delete %s: container is running (use force): %w", s.opts.ID, errdefs.ErrFailedPrecondition)
	}
	s.deleting = true
	eager := s.eager
	s.mu.Unlock()
	done := false
	if eager != nil {
		// DeleteOnExit: the runtime's delete began when the init exited.
		select {
		case <-eager:
		case <-ctx.Done():
			return shimapi.StateResponse{}, false, fmt.Errorf("delete %s: %w", s.opts.ID, ctx.Err())
		}
		s.mu.Lock()
		done = s.eagerErr == nil
		s.mu.Unlock()
	}
	if !done {
		if err := s.rt.Delete(ctx, s.opts.ID, r.Force || running); err != nil && !errdefs.IsNotFound(err) {
			s.mu.Lock()
			s.deleting = false
			skipped := s.eagerSkipped
			s.eagerSkipped = false
			s.mu.Unlock()
			if skipped {
				// The init exited meanwhile and DeleteOnExit's delete
				// waited for this one: it goes on in the background.
				s.deleteOnExit()
			}
			return shimapi.StateResponse{}, false, fmt.Errorf("delete %s: %w", s.opts.ID, err)
		}
	}
	// The init was killed by the forced delete: its exit is recorded soon.
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
	case <-ctx.Done():
	}
	s.mu.Lock()
	st := p.state(s.opts.ID)
	s.deleted = true
	if p.console != nil {
		p.console.Close()
	}
	s.mu.Unlock()
	s.log.close()
	s.removeState()
	return st, true, nil
}

func (s *Shim) shutdown(r shimapi.ShutdownRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.deleted && !r.Now {
		return fmt.Errorf("shutdown: container %s still exists (delete it, or shut down now): %w", s.opts.ID, errdefs.ErrFailedPrecondition)
	}
	return nil
}

// readPid reads a pid file.
func readPid(path string) (int, error) {
	return ociclient.ReadPidFile(path)
}

// shimAlive reports whether pid is a gantry-shim serving stateDir.
func shimAlive(pid int, stateDir string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err == nil && containsZombie(st) {
		return false
	}
	return containsArg(cmdline, stateDir)
}

func containsZombie(stat []byte) bool {
	for i := len(stat) - 1; i > 0; i-- {
		if stat[i] == ')' {
			return i+2 < len(stat) && stat[i+2] == 'Z'
		}
	}
	return false
}

func containsArg(cmdline []byte, arg string) bool {
	start := 0
	for i, b := range cmdline {
		if b == 0 {
			if string(cmdline[start:i]) == arg {
				return true
			}
			start = i + 1
		}
	}
	return false
}

func isNotFound(err error) bool { return errdefs.IsNotFound(err) }
