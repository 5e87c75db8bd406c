package shim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/ociclient"
)

var errInvalid = errdefs.ErrInvalidArgument

// ioDrainTimeout bounds the wait for a process's output after its exit (a
// process it left behind may still hold the pipe).
const ioDrainTimeout = 2 * time.Second

// process is the container's init or one exec.
type process struct {
	execID     string
	pid        int
	pidfd      int
	status     string
	exitStatus int
	exitedAt   time.Time
	oomKilled  bool // the init's exit: the OOM killer killed in the container
	exited     chan struct{}
	terminal   bool
	console    *os.File // pty master, when terminal
	stdin      *os.File // write end of the stdin pipe, when asked
	ioDone     chan struct{}
	out        *outputHub // live output for AttachOutput
}

func (p *process) state(id string) shimapi.StateResponse {
	return shimapi.StateResponse{ID: id, ExecID: p.execID, Pid: p.pid, Status: p.status,
		ExitStatus: p.exitStatus, ExitedAt: p.exitedAt, OOMKilled: p.oomKilled, Terminal: p.terminal}
}

// Shim is one running shim.
type Shim struct {
	opts   Options
	rt     *ociclient.Runtime
	log    *jsonLog
	reaper *reaper
	// cgroupsPath is the bundle's linux.cgroupsPath: where the OOM kills
	// of the container are counted (oom.go), found by oom.
	cgroupsPath string
	oom         atomic.Pointer[oomLocation]

	mu        sync.Mutex
	init      *process
	execs     map[string]*process
	byPid     map[int]*process
	unclaimed map[int]exit
	deleted   bool
	deleting  bool // Delete of the container has begun
	nconsole  int
	// starting is closed when an in-flight start's runtime call returns.
	starting chan struct{}
	// eager is closed when the runtime's delete started by DeleteOnExit
	// has returned; eagerErr is its error.
	eager    chan struct{}
	eagerErr error
	// eagerSkipped: DeleteOnExit's delete was not started as the init
	// exited, a Delete being in flight; should that Delete fail, it is
	// started then.
	eagerSkipped bool

	listener *net.UnixListener
	done     chan struct{}
	doneOnce sync.Once
}

// Serve runs a shim in the current process until its container is deleted
// or it is shut down: it becomes a subreaper, writes its state directory,
// creates the container, reports "ok" (or "error: ...") on ready, and
// answers requests on its socket.
func Serve(o Options, ready *os.File) error {
	err := serve(o, ready)
	if err != nil && ready != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
	}
	if ready != nil {
		ready.Close()
	}
	return err
}

func serve(o Options, ready *os.File) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if err := becomeSubreaper(); err != nil {
		return err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return fmt.Errorf("make state dir: %w", err)
	}
	if err := os.Chdir(o.StateDir); err != nil {
		return fmt.Errorf("enter state dir: %w", err)
	}
	if pid, err := readPid(filepath.Join(o.StateDir, PidName)); err == nil && pid != os.Getpid() && shimAlive(pid, o.StateDir) {
		return fmt.Errorf("shim for %s/%s: already running as pid %d: %w", o.Namespace, o.ID, pid, errdefs.ErrAlreadyExists)
	}
	s := &Shim{
		opts: o, execs: map[string]*process{}, byPid: map[int]*process{},
		unclaimed: map[int]exit{}, done: make(chan struct{}),
	}
	s.reaper = newReaper(s.onExit)
	go s.reaper.run()
	s.rt = &ociclient.Runtime{
		Binary: o.Runtime, Root: o.RuntimeRoot, Timeout: o.Timeout,
		Log: filepath.Join(o.StateDir, RuntimeLogName), Monitor: s.reaper,
	}
	fail := func(err error) error {
		s.removeState()
		return err
	}
	// The pid tells a live shim (Discover, a second serve) only while the
	// machine is up: it is in place at once, without fsync.
	if err := writeAtomic(o.StateDir, PidName, []byte(strconv.Itoa(os.Getpid())+"\n")); err != nil {
		return fail(err)
	}
	// shim.json must survive a crash of the machine (Cleanup needs the
	// runtime and its root): it is written and fsynced while the runtime
	// creates the container, and is in place before "ok" is reported.
	recorded := make(chan error, 1)
	go func() { recorded <- writeJSON(o.StateDir, RecordName, o) }()
	failRecorded := func(err error) error {
		<-recorded // the writer is done before the directory is removed
		return fail(err)
	}
	var err error
	if s.log, err = openLog(o.LogPath, o.LogMaxSize, o.LogMaxFiles); err != nil {
		return failRecorded(err)
	}
	os.Remove(SocketName)
	if s.listener, err = net.ListenUnix("unix", &net.UnixAddr{Name: SocketName, Net: "unix"}); err != nil {
		return failRecorded(fmt.Errorf("listen on %s: %w", filepath.Join(o.StateDir, SocketName), err))
	}
	if err := os.Chmod(SocketName, 0o600); err != nil {
		return failRecorded(fmt.Errorf("chmod %s: %w", SocketName, err))
	}
	if err := s.create(); err != nil {
		s.listener.Close()
		return failRecorded(err)
	}
	if err := <-recorded; err != nil {
		s.listener.Close()
		s.rt.Delete(context.Background(), o.ID, true)
		return fail(err)
	}
	if ready != nil {
		fmt.Fprintf(ready, "ok %s\n", filepath.Join(o.StateDir, SocketName))
		ready.Close()
	}
	go s.acceptLoop()
	// Creating the container was the busiest moment; hand back its garbage.
	debug.FreeOSMemory()
	<-s.done
	s.listener.Close()
	return nil
}

func (s *Shim) stop() { s.doneOnce.Do(func() { close(s.done) }) }

func (s *Shim) removeState() {
	os.RemoveAll(s.opts.StateDir)
}

// spec is the part of config.json and process.json the shim reads.
type specProcess struct {
	Terminal bool `json:"terminal"`
}

// readBundle reads what the shim needs of the bundle's config.json:
// whether the init has a terminal, and the container's cgroups path.
func (s *Shim) readBundle() (terminal bool, cgroupsPath string, err error) {
	data, err := os.ReadFile(filepath.Join(s.opts.Bundle, "config.json"))
	if err != nil {
		return false, "", fmt.Errorf("read bundle config: %w", err)
	}
	var c struct {
		Process *specProcess `json:"process"`
		Linux   *struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if err := json.Unmarshal(data, &c); err != nil {
		return false, "", fmt.Errorf("%s: %w", filepath.Join(s.opts.Bundle, "config.json"), err)
	}
	if c.Linux != nil {
		cgroupsPath = c.Linux.CgroupsPath
	}
	return c.Process != nil && c.Process.Terminal, cgroupsPath, nil
}

// stdio prepares a process's stdio: a console socket for a terminal, else
// pipes. It returns the runtime's view (io, consoleSocket path) and a
// function to call once the runtime returned (ok: it succeeded).
func (s *Shim) stdio(p *process, withStdin bool) (*ociclient.IO, string, func(ok bool) error, error) {
	p.ioDone = make(chan struct{})
	if p.terminal {
		s.mu.Lock()
		s.nconsole++
		name := "console-" + strconv.Itoa(s.nconsole) + ".sock"
		s.mu.Unlock()
		cs, err := newConsoleSocket(s.opts.StateDir, name)
		if err != nil {
			return nil, "", nil, err
		}
		type result struct {
			f   *os.File
			err error
		}
		ch := make(chan result, 1)
		timeout := s.rt.Timeout
		if timeout <= 0 {
			timeout = ociclient.DefaultTimeout
		}
		go func() {
			f, err := cs.receive(timeout)
			ch <- result{f, err}
		}()
		after := func(ok bool) error {
			if !ok {
				cs.close()
				p.out.close()
				close(p.ioDone)
				return nil
			}
			r := <-ch
			cs.close()
			if r.err != nil {
				p.out.close()
				close(p.ioDone)
				return r.err
			}
			p.console = r.f
			go func() {
				defer close(p.ioDone)
				defer p.out.close()
				s.copyOutput(p, "stdout", r.f)
			}()
			return nil
		}
		return &ociclient.IO{}, cs.path, after, nil
	}
	var toClose []*os.File
	io := &ociclient.IO{}
	outR, outW, err := os.Pipe()
	if err != nil {
		return nil, "", nil, fmt.Errorf("stdout pipe: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		outR.Close()
		outW.Close()
		return nil, "", nil, fmt.Errorf("stderr pipe: %w", err)
	}
	io.Stdout, io.Stderr = outW, errW
	toClose = append(toClose, outW, errW)
	var inW *os.File
	if withStdin {
		var inR *os.File
		if inR, inW, err = os.Pipe(); err != nil {
			outR.Close()
			outW.Close()
			errR.Close()
			errW.Close()
			return nil, "", nil, fmt.Errorf("stdin pipe: %w", err)
		}
		io.Stdin = inR
		toClose = append(toClose, inR)
	}
	after := func(ok bool) error {
		for _, f := range toClose {
			f.Close()
		}
		if !ok {
			outR.Close()
			errR.Close()
			if inW != nil {
				inW.Close()
			}
			p.out.close()
			close(p.ioDone)
			return nil
		}
		p.stdin = inW
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); s.copyOutput(p, "stdout", outR); outR.Close() }()
		go func() { defer wg.Done(); s.copyOutput(p, "stderr", errR); errR.Close() }()
		go func() { wg.Wait(); p.out.close(); close(p.ioDone) }()
		return nil
	}
	return io, "", after, nil
}

// AttachWait bounds how long a shim started with HoldOutput waits for the
// first attacher of the init's output before it drops what does not fit
// the hold (the log keeps all of it).
const AttachWait = 15 * time.Second

// create creates the container with the runtime's create, or with Start
// creates and starts it with one `run --detach`.
func (s *Shim) create() error {
	terminal, cgroupsPath, err := s.readBundle()
	if err != nil {
		return err
	}
	s.cgroupsPath = cgroupsPath
	s.locateOOMCounter()
	out := newOutputHub(false)
	status := shimapi.StatusCreated
	if s.opts.Start {
		status = shimapi.StatusRunning
		if s.opts.HoldOutput {
			out = newWaitingHub()
		}
	}
	p := &process{status: status, exited: make(chan struct{}), terminal: terminal, pidfd: -1, out: out}
	io, console, after, err := s.stdio(p, s.opts.Stdin)
	if err != nil {
		return err
	}
	pidFile := filepath.Join(s.opts.StateDir, InitPidName)
	co := ociclient.CreateOptions{
		Bundle: s.opts.Bundle, PidFile: pidFile, ConsoleSocket: console, NoPivot: s.opts.NoPivot, IO: io,
	}
	verb := "create"
	if s.opts.Start {
		verb = "run"
		err = s.rt.RunDetached(context.Background(), s.opts.ID, co)
	} else {
		err = s.rt.Create(context.Background(), s.opts.ID, co)
	}
	if err != nil {
		after(false)
		s.rt.Delete(context.Background(), s.opts.ID, true)
		return fmt.Errorf("%s container %s: %w", verb, s.opts.ID, err)
	}
	if s.opts.Start && s.opts.HoldOutput {
		time.AfterFunc(AttachWait, out.release)
	}
	if err := after(true); err != nil {
		s.rt.Delete(context.Background(), s.opts.ID, true)
		return fmt.Errorf("create container %s: %w", s.opts.ID, err)
	}
	pid, err := ociclient.ReadPidFile(pidFile)
	if err != nil {
		s.rt.Delete(context.Background(), s.opts.ID, true)
		return fmt.Errorf("create container %s: %w", s.opts.ID, err)
	}
	s.mu.Lock()
	s.init = p
	s.register(p, pid)
	s.mu.Unlock()
	return nil
}

// register records p's pid; an exit the reaper saw before is applied now.
// s.mu is held.
func (s *Shim) register(p *process, pid int) {
	p.pid = pid
	if fd, err := unix.PidfdOpen(pid, 0); err == nil {
		p.pidfd = fd
	}
	s.byPid[pid] = p
	if e, ok := s.unclaimed[pid]; ok {
		delete(s.unclaimed, pid)
		delete(s.byPid, pid)
		go s.finish(p, e.status, time.Now())
	}
}

// onExit is the reaper's callback for every process it did not start
// itself.
func (s *Shim) onExit(pid, status int) {
	now := time.Now()
	s.mu.Lock()
	p, ok := s.byPid[pid]
	if !ok {
		s.unclaimed[pid] = exit{pid, status}
		s.mu.Unlock()
		return
	}
	delete(s.byPid, pid)
	s.mu.Unlock()
	go s.finish(p, status, now)
}

// finish records an exit durably, lets the output drain, then reports it.
func (s *Shim) finish(p *process, status int, at time.Time) {
	rec := ExitRecord{Pid: p.pid, ExitStatus: status, ExitedAt: at.UTC()}
	if p.execID == "" {
		// Before the runtime's delete below takes the cgroup away.
		rec.OOMKilled = s.oomKilled()
		if s.opts.DeleteOnExit {
			s.deleteOnExit()
		}
	}
	name := ExitName
	if p.execID != "" {
		name = "exec-" + p.execID + ".exit.json"
	}
	if err := writeJSON(s.opts.StateDir, name, rec); err != nil {
		fmt.Fprintf(os.Stderr, "gantry-shim %s: record exit of pid %d: %v\n", s.opts.ID, p.pid, err)
	}
	// Output held for an attacher on its way (HoldOutput) may have the
	// copy waiting: give the attacher its time (AttachWait) before the
	// drain's own bound starts.
	select {
	case <-p.ioDone:
	case <-p.out.released():
	}
	select {
	case <-p.ioDone:
	case <-time.After(ioDrainTimeout):
	}
	// Attachers end here even if a process left behind holds the output.
	p.out.close()
	s.mu.Lock()
	defer s.mu.Unlock()
	if p.pidfd >= 0 {
		unix.Close(p.pidfd)
		p.pidfd = -1
	}
	if p.stdin != nil {
		p.stdin.Close()
		p.stdin = nil
	}
	p.status = shimapi.StatusStopped
	p.exitStatus = status
	p.exitedAt = rec.ExitedAt
	p.oomKilled = rec.OOMKilled
	close(p.exited)
}

// deleteOnExit starts the runtime's delete of the exited container in the
// background, once any start in flight has returned (the runtime would
// otherwise see its state vanish under it). Delete waits for it.
func (s *Shim) deleteOnExit() {
	s.mu.Lock()
	if s.eager != nil || s.deleting {
		s.eagerSkipped = s.eager == nil
		s.mu.Unlock()
		return
	}
	done := make(chan struct{})
	s.eager = done
	starting := s.starting
	s.mu.Unlock()
	go func() {
		defer close(done)
		if starting != nil {
			<-starting
		}
		err := s.rt.Delete(context.Background(), s.opts.ID, false)
		if errdefs.IsNotFound(err) {
			err = nil
		}
		s.mu.Lock()
		s.eagerErr = err
		s.mu.Unlock()
	}()
}

var execIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// lookup returns the init (execID "") or an exec. s.mu is held.
func (s *Shim) lookup(execID string) (*process, error) {
	if s.deleted || s.init == nil {
		return nil, fmt.Errorf("container %s: deleted: %w", s.opts.ID, errdefs.ErrNotFound)
	}
	if execID == "" {
		return s.init, nil
	}
	p, ok := s.execs[execID]
	if !ok {
		return nil, fmt.Errorf("exec %q: %w", execID, errdefs.ErrNotFound)
	}
	return p, nil
}

var errStopped = errors.New("process has exited")
