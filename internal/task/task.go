package task

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/shim"
)

// Topics of the events the manager publishes.
const (
	TopicCreate = "/tasks/create"
	TopicStart  = "/tasks/start"
	TopicExit   = "/tasks/exit"
	TopicDelete = "/tasks/delete"
	TopicExec   = "/tasks/exec-added"
	TopicPause  = "/tasks/paused"
	TopicResume = "/tasks/resumed"
	TopicOOM    = "/tasks/oom"
)

// Status values of a task (as the shim's).
const (
	StatusCreated = shimapi.StatusCreated
	StatusRunning = shimapi.StatusRunning
	StatusPaused  = shimapi.StatusPaused
	StatusStopped = shimapi.StatusStopped
)

// Config configures a Manager.
type Config struct {
	// StateRoot holds the shims' state directories (<state>/shims).
	StateRoot string
	// ShimBinary is gantry-shim.
	ShimBinary string
	// RuntimeRoot is the directory under which each runtime gets its
	// --root (<RuntimeRoot>/<binary name>).
	RuntimeRoot string
	// Timeout bounds each runtime call inside the shim (0: the shim's
	// default).
	Timeout time.Duration
	// CallTimeout bounds each call gantryd makes to a shim that is not a
	// wait (launch, start, exec, kill, delete, ...), so a wedged shim or
	// runtime never wedges a caller (0: DefaultCallTimeout, or three
	// runtime timeouts and 10 s when Timeout is set).
	CallTimeout time.Duration
	// Publish receives the task events; may be nil.
	Publish func(ns, topic, id string, attrs map[string]string)
	// Exited, if set, is told of each exit of a task's init that the
	// manager learns, once per task: from the shim's Wait (Gone false:
	// the shim keeps the exit until the task is deleted), or when the
	// task's shim was found dead and cleaned up (Gone true). It runs on
	// the manager's goroutine (for a dead shim, while the task's delete is
	// held off), so it must not wait on the manager (a Delete of the same
	// task would wait on it): record, or hand the work to another
	// goroutine.
	Exited func(Exit)
	Logger *slog.Logger
}

// Exit is the exit of a task's init, as Config.Exited receives it.
type Exit struct {
	Namespace, ID string
	// State is the final state: status stopped, the exit status, or
	// ExitUnknown when the shim died without recording one (ExitedAt is
	// then when gantryd noticed, or zero for a shim found dead at
	// Restore, which may have died long before).
	State State
	// Gone: the task's shim was dead and has been cleaned up (the
	// runtime's delete --force killed whatever of the container was left
	// and removed its state): the manager forgets the task when Exited
	// returns, so the exit is the caller's to keep; then /tasks/exit and
	// /tasks/delete are published.
	Gone bool
}

// CreateOptions describe one task.
type CreateOptions struct {
	Bundle  string
	Runtime string
	LogPath string
	Stdin   bool
	// DeleteOnExit: the container is removed once it exits, so the shim
	// deletes it with the runtime as soon as its init exits (see
	// shim.Options.DeleteOnExit).
	DeleteOnExit bool
	// Start also starts the task, in the same runtime call as the create
	// (the shim's Options.Start: `run --detach`); HoldOutput then holds the
	// init's output for the first live attacher (shim.Options.HoldOutput).
	Start      bool
	HoldOutput bool
}

// State is the state of a task or of one exec.
type State struct {
	ID          string
	ExecID      string
	Pid         int
	Status      string
	ExitStatus  int
	ExitUnknown bool
	ExitedAt    time.Time
	Terminal    bool
	// OOMKilled, of a stopped init, tells that the kernel's OOM killer
	// killed a process of the container (the shim's exit record says so).
	OOMKilled bool
}

// Manager tracks the tasks of every namespace.
type Manager struct {
	cfg Config

	mu    sync.Mutex
	tasks map[string]*Task
}

// Task is one container's running shim.
type Task struct {
	Namespace, ID string
	dir           string
	client        *shim.Client
	m             *Manager

	// started is the state right after a Create with Start.
	started *State

	mu      sync.Mutex
	dead    bool
	exit    *shim.ExitRecord // when dead: the durable record, if any
	noticed time.Time        // when dead: when gantryd noticed (zero at Restore)
	deadWhy error            // when dead: what showed it (nil at Restore)
	opts    shim.Options

	// delMu serializes the end of the task: the shim's Delete and the
	// clean-up after a dead shim (reap), so that neither runs the
	// runtime's delete for a task that the other has already ended (and
	// whose id a new task may have taken).
	delMu sync.Mutex
}

// DefaultCallTimeout bounds a call to a shim when neither CallTimeout nor
// Timeout is configured: a shim's delete makes up to three runtime calls
// of 30 s each.
const DefaultCallTimeout = 100 * time.Second

// New returns a manager; call Restore before serving.
func New(cfg Config) *Manager {
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
		if cfg.Timeout > 0 {
			cfg.CallTimeout = 3*cfg.Timeout + 10*time.Second
		}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Publish == nil {
		cfg.Publish = func(string, string, string, map[string]string) {}
	}
	if cfg.Exited == nil {
		cfg.Exited = func(Exit) {}
	}
	return &Manager{cfg: cfg, tasks: map[string]*Task{}}
}

func key(ns, id string) string { return ns + "/" + id }

// bound returns ctx limited to the call timeout.
func (m *Manager) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, m.cfg.CallTimeout)
}

// RuntimeRoot returns the --root a runtime binary gets.
func (m *Manager) RuntimeRoot(runtime string) string {
	return filepath.Join(m.cfg.RuntimeRoot, filepath.Base(runtime))
}

// Restore finds the shims left by a previous gantryd: a live one is
// reconnected and watched; a dead one is cleaned up (reap: the runtime's
// delete --force, its state directory removed) and its exit handed to
// Config.Exited. A dead one whose clean-up fails stays, dead, for Delete
// to retry.
func (m *Manager) Restore(ctx context.Context) error {
	found, err := shim.Discover(m.cfg.StateRoot)
	if err != nil {
		return err
	}
	for _, f := range found {
		ns, id := filepath.Base(filepath.Dir(f.Dir)), filepath.Base(f.Dir)
		t := &Task{Namespace: ns, ID: id, dir: f.Dir, client: shim.NewClient(f.Socket), m: m, opts: f.Options}
		if f.Alive {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			_, err := t.client.Connect(cctx)
			cancel()
			if err == nil {
				m.mu.Lock()
				m.tasks[key(ns, id)] = t
				m.mu.Unlock()
				go m.watch(t)
				m.cfg.Logger.Info("reconnected to shim", "namespace", ns, "id", id, "pid", f.ShimPid)
				continue
			}
			m.cfg.Logger.Warn("shim does not answer; treating it as dead", "namespace", ns, "id", id, "error", err)
			if p, perr := os.FindProcess(f.ShimPid); perr == nil {
				p.Signal(syscall.SIGKILL)
			}
		}
		t.dead, t.exit = true, f.Exit
		m.mu.Lock()
		m.tasks[key(ns, id)] = t
		m.mu.Unlock()
		if err := m.reap(ctx, t); err != nil {
			m.cfg.Logger.Warn("clean up dead shim; gantry rm retries", "namespace", ns, "id", id, "error", err)
		}
	}
	return nil
}

// Create launches the shim of container ns/id, which creates the
// container with the runtime. The task is "created" until Start; with
// o.Start it is started too, in the same runtime call, and both events
// (/tasks/create, /tasks/start) are published, in that order, before any
// /tasks/exit of it.
func (m *Manager) Create(ctx context.Context, ns, id string, o CreateOptions) (*Task, error) {
	k := key(ns, id)
	m.mu.Lock()
	if _, ok := m.tasks[k]; ok {
		m.mu.Unlock()
		return nil, fmt.Errorf("task %s: %w", id, errdefs.ErrAlreadyExists)
	}
	// Reserve the key while the shim starts.
	t := &Task{Namespace: ns, ID: id, dir: shim.Dir(m.cfg.StateRoot, ns, id), m: m}
	m.tasks[k] = t
	m.mu.Unlock()
	opts := shim.Options{
		Namespace: ns, ID: id, StateDir: t.dir, Bundle: o.Bundle,
		Runtime: o.Runtime, RuntimeRoot: m.RuntimeRoot(o.Runtime), LogPath: o.LogPath,
		Stdin: o.Stdin, Timeout: m.cfg.Timeout, DeleteOnExit: o.DeleteOnExit,
		Start: o.Start, HoldOutput: o.Start && o.HoldOutput,
	}
	if err := os.MkdirAll(filepath.Dir(t.dir), 0o700); err != nil {
		m.forget(t)
		return nil, fmt.Errorf("create task %s: %w", id, err)
	}
	Fault(FaultBeforeShimLaunch)
	lctx, cancel := m.bound(ctx)
	sock, err := shim.Launch(lctx, m.cfg.ShimBinary, opts)
	late := lctx.Err() != nil
	cancel()
	if err != nil {
		m.forget(t)
		err = fmt.Errorf("create task %s: %w", id, err)
		if late || strings.Contains(err.Error(), "timed out") {
			// The runtime (or the shim) did not answer in time; the
			// shim reports it only as text.
			err = kindError{err: err, kind: errdefs.ErrUnavailable}
		}
		return nil, err
	}
	Fault(FaultAfterShimLaunch)
	t.client = shim.NewClient(sock)
	t.opts = opts
	m.cfg.Publish(ns, TopicCreate, id, nil)
	if o.Start {
		Fault(FaultAfterTaskStart)
		attrs := map[string]string{}
		sctx, cancel := m.bound(ctx)
		if st, err := t.client.State(sctx, ""); err == nil {
			attrs["pid"] = strconv.Itoa(st.Pid)
			started := fromShim(st)
			t.started = &started
		}
		cancel()
		m.cfg.Publish(ns, TopicStart, id, attrs)
	}
	// The watcher publishes the exit: only after the events above.
	go m.watch(t)
	return t, nil
}

func (m *Manager) forget(t *Task) {
	m.mu.Lock()
	if m.tasks[key(t.Namespace, t.ID)] == t {
		delete(m.tasks, key(t.Namespace, t.ID))
	}
	m.mu.Unlock()
}

// Started returns the task's state as its Create with Start saw it, ok
// false without Start (or when its shim did not answer).
func (t *Task) Started() (State, bool) {
	if t.started == nil {
		return State{}, false
	}
	return *t.started, true
}

// Get returns the task of container ns/id, or ErrNotFound.
func (m *Manager) Get(ns, id string) (*Task, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t, ok := m.tasks[key(ns, id)]
	if !ok || t.client == nil {
		return nil, fmt.Errorf("container %s has no task: %w", id, errdefs.ErrNotFound)
	}
	return t, nil
}

// watch waits for the init's exit and publishes it. The shim holds the
// Wait's connection open until then, so a shim that dies closes it at
// once (the kernel closes a dead process's sockets): the task is then
// marked dead and cleaned up (died).
func (m *Manager) watch(t *Task) {
	for {
		st, err := t.client.Wait(context.Background(), "")
		if err == nil {
			s := fromShim(st)
			m.cfg.Publish(t.Namespace, TopicExit, t.ID, exitAttrs(s))
			m.cfg.Exited(Exit{Namespace: t.Namespace, ID: t.ID, State: s})
			return
		}
		if errors.Is(err, errdefs.ErrNotFound) {
			return
		}
		if !t.shimAlive() {
			t.died(err)
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// exitAttrs are the attributes of a /tasks/exit event.
func exitAttrs(s State) map[string]string {
	if s.ExitUnknown {
		return map[string]string{"exit_status": "unknown"}
	}
	return map[string]string{"exit_status": strconv.Itoa(s.ExitStatus), "pid": strconv.Itoa(s.Pid)}
}

// shimAlive tells whether the shim process still serves the task's
// directory.
func (t *Task) shimAlive() bool {
	if _, err := os.Stat(t.dir); err != nil {
		return false // deleted
	}
	data, err := os.ReadFile(filepath.Join(t.dir, shim.PidName))
	if err != nil {
		return false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		return false
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if i := strings.LastIndexByte(string(stat), ')'); i >= 0 && strings.HasPrefix(strings.TrimSpace(string(stat[i+1:])), "Z") {
		return false
	}
	for _, a := range strings.Split(string(cmdline), "\x00") {
		if a == t.dir {
			return true
		}
	}
	return false
}

// markDead records that the shim died, and the error that showed it; it
// reports whether this call did.
func (t *Task) markDead(why error) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dead {
		return false
	}
	t.dead, t.noticed, t.deadWhy = true, time.Now().UTC(), why
	if rec, ok, err := shim.ReadExit(t.dir); err == nil && ok {
		t.exit = &rec
	}
	return true
}

// died records that the shim is gone (why: the error that showed it) and,
// the first time, cleans up after it in the background (reap), as Restore
// does for a shim found dead.
func (t *Task) died(why error) {
	if !t.markDead(why) {
		return
	}
	go func() {
		ctx, cancel := t.m.bound(context.Background())
		defer cancel()
		if err := t.m.reap(ctx, t); err != nil {
			t.m.cfg.Logger.Warn("clean up after a dead shim; gantry rm retries", "namespace", t.Namespace, "id", t.ID, "error", err)
		}
	}()
}

// reap cleans up after the dead shim of t: the runtime's delete --force
// (which kills what is left of the container, with its cgroup, and removes
// the runtime's state), the shim's state directory removed. Then the exit
// goes to Config.Exited (Gone), the task is forgotten, and /tasks/exit and
// /tasks/delete are published. It is the one path for a dead shim,
// whether Restore found it, a watcher or a call noticed it, or Delete
// meets it; it does nothing for a task already ended (by Delete, or by an
// earlier reap). A failed clean-up leaves the task, dead, for Delete to
// retry.
func (m *Manager) reap(ctx context.Context, t *Task) error {
	t.delMu.Lock()
	defer t.delMu.Unlock()
	return m.reapLocked(ctx, t)
}

func (m *Manager) reapLocked(ctx context.Context, t *Task) error {
	if !m.current(t) {
		return nil
	}
	st, _ := t.deadState()
	t.mu.Lock()
	f := shim.Found{Dir: t.dir, Options: t.opts, Exit: t.exit}
	why := t.deadWhy
	t.mu.Unlock()
	if _, err := shim.Cleanup(ctx, f); err != nil {
		return err
	}
	m.cfg.Exited(Exit{Namespace: t.Namespace, ID: t.ID, State: st, Gone: true})
	m.forget(t)
	m.cfg.Publish(t.Namespace, TopicExit, t.ID, exitAttrs(st))
	m.cfg.Publish(t.Namespace, TopicDelete, t.ID, map[string]string{"exit_status": exitAttrs(st)["exit_status"]})
	attrs := []any{"namespace", t.Namespace, "id", t.ID, "exit_known", !st.ExitUnknown}
	if why != nil {
		attrs = append(attrs, "noticed_by", why)
	}
	m.cfg.Logger.Info("cleaned up after a dead shim", attrs...)
	return nil
}

// current tells whether t is still the task the manager tracks for its
// container.
func (m *Manager) current(t *Task) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tasks[key(t.Namespace, t.ID)] == t
}

// check turns an unavailable shim into a dead task.
func (t *Task) check(err error) error {
	if err != nil && errors.Is(err, errdefs.ErrUnavailable) && !t.shimAlive() {
		t.died(err)
		return fmt.Errorf("container %s: its shim is gone (the exit status is unknown): %w", t.ID, errdefs.ErrFailedPrecondition)
	}
	return err
}

// deadState returns the final state of a dead task, ok false if alive.
func (t *Task) deadState() (State, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.dead {
		return State{}, false
	}
	st := State{ID: t.ID, Status: StatusStopped, ExitUnknown: true, ExitedAt: t.noticed}
	if t.exit != nil {
		st.ExitUnknown, st.ExitStatus, st.ExitedAt, st.Pid, st.OOMKilled = false, t.exit.ExitStatus, t.exit.ExitedAt, t.exit.Pid, t.exit.OOMKilled
	}
	return st, true
}

func (t *Task) refuseDead(verb string) error {
	if _, dead := t.deadState(); dead {
		return fmt.Errorf("%s %s: the container's shim is gone: %w", verb, t.ID, errdefs.ErrFailedPrecondition)
	}
	return nil
}

func fromShim(s shimapi.StateResponse) State {
	return State{ID: s.ID, ExecID: s.ExecID, Pid: s.Pid, Status: s.Status, ExitStatus: s.ExitStatus, ExitedAt: s.ExitedAt, Terminal: s.Terminal, OOMKilled: s.OOMKilled}
}

// Start starts the container's process.
func (t *Task) Start(ctx context.Context) (State, error) {
	return t.StartWith(ctx, StartOptions{})
}

// StartOptions configure StartWith.
type StartOptions struct {
	// HoldOutput holds the init's output for the first live attacher, as
	// CreateOptions.HoldOutput does for a Create with Start.
	HoldOutput bool
}

// StartWith starts a created task with o.
func (t *Task) StartWith(ctx context.Context, o StartOptions) (State, error) {
	if err := t.refuseDead("start"); err != nil {
		return State{}, err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	st, err := t.client.StartWith(ctx, shimapi.StartRequest{HoldOutput: o.HoldOutput})
	if err != nil {
		return State{}, t.check(err)
	}
	Fault(FaultAfterTaskStart)
	t.m.cfg.Publish(t.Namespace, TopicStart, t.ID, map[string]string{"pid": strconv.Itoa(st.Pid)})
	return fromShim(st), nil
}

// State returns the state of the task (execID "") or of one exec.
func (t *Task) State(ctx context.Context, execID string) (State, error) {
	if st, dead := t.deadState(); dead {
		if execID != "" {
			return State{}, fmt.Errorf("exec %q of %s: %w", execID, t.ID, errdefs.ErrNotFound)
		}
		return st, nil
	}
	st, err := t.client.State(ctx, execID)
	if err != nil {
		if err = t.check(err); errors.Is(err, errdefs.ErrFailedPrecondition) && execID == "" {
			st, _ := t.deadState()
			return st, nil
		}
		return State{}, err
	}
	return fromShim(st), nil
}

// Wait returns once the process has exited.
func (t *Task) Wait(ctx context.Context, execID string) (State, error) {
	for {
		if st, dead := t.deadState(); dead {
			if execID != "" {
				return State{}, fmt.Errorf("exec %q of %s: %w", execID, t.ID, errdefs.ErrNotFound)
			}
			return st, nil
		}
		st, err := t.client.Wait(ctx, execID)
		if err == nil {
			return fromShim(st), nil
		}
		if ctx.Err() != nil {
			return State{}, ctx.Err()
		}
		if errors.Is(err, errdefs.ErrUnavailable) && !t.shimAlive() {
			t.died(err)
			continue
		}
		return State{}, err
	}
}

// Kill signals the init (all: every process) or one exec.
func (t *Task) Kill(ctx context.Context, execID string, sig syscall.Signal, all bool) error {
	if err := t.refuseDead("kill"); err != nil {
		return err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	Fault(FaultBeforeKill)
	if err := t.client.Kill(ctx, execID, sig, all); err != nil {
		if execID == "" && errors.Is(err, errdefs.ErrFailedPrecondition) && t.exitedMeanwhile(ctx) {
			// The init exited between the shim's check and the
			// runtime's: the runtime says "not running" before the
			// shim has reaped it. What the signal was for is done.
			return nil
		}
		return t.check(err)
	}
	Fault(FaultAfterKill)
	return nil
}

// ExecOptions describe an exec.
type ExecOptions struct {
	ExecID  string
	Process json.RawMessage // a runtime-spec process object
	Stdin   bool
}

// Exec starts a process in the running container.
func (t *Task) Exec(ctx context.Context, o ExecOptions) (State, error) {
	if err := t.refuseDead("exec in"); err != nil {
		return State{}, err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	st, err := t.client.Exec(ctx, shimapi.ExecRequest{ExecID: o.ExecID, Process: o.Process, Stdin: o.Stdin})
	if err != nil {
		return State{}, t.check(err)
	}
	Fault(FaultAfterExecStart)
	t.m.cfg.Publish(t.Namespace, TopicExec, t.ID, map[string]string{"exec_id": o.ExecID, "pid": strconv.Itoa(st.Pid)})
	return fromShim(st), nil
}

// Pause freezes the container.
func (t *Task) Pause(ctx context.Context) error {
	if err := t.refuseDead("pause"); err != nil {
		return err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	if err := t.client.Pause(ctx); err != nil {
		return t.check(err)
	}
	t.m.cfg.Publish(t.Namespace, TopicPause, t.ID, nil)
	return nil
}

// Resume thaws the container.
func (t *Task) Resume(ctx context.Context) error {
	if err := t.refuseDead("resume"); err != nil {
		return err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	if err := t.client.Resume(ctx); err != nil {
		return t.check(err)
	}
	t.m.cfg.Publish(t.Namespace, TopicResume, t.ID, nil)
	return nil
}

// Pids lists the container's processes.
func (t *Task) Pids(ctx context.Context) ([]int, error) {
	if err := t.refuseDead("list processes of"); err != nil {
		return nil, err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	p, err := t.client.Pids(ctx)
	return p, t.check(err)
}

// Stats returns the runtime's statistics as JSON.
func (t *Task) Stats(ctx context.Context) (json.RawMessage, error) {
	if err := t.refuseDead("stats of"); err != nil {
		return nil, err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	s, err := t.client.Stats(ctx)
	return s, t.check(err)
}

// ResizePty resizes the pty of the task or of one exec.
func (t *Task) ResizePty(ctx context.Context, execID string, w, h uint16) error {
	if err := t.refuseDead("resize"); err != nil {
		return err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	return t.check(t.client.ResizePty(ctx, execID, w, h))
}

// CloseStdin closes the stdin of the task or of one exec.
func (t *Task) CloseStdin(ctx context.Context, execID string) error {
	if err := t.refuseDead("close stdin of"); err != nil {
		return err
	}
	ctx, cancel := t.m.bound(ctx)
	defer cancel()
	return t.check(t.client.CloseStdin(ctx, execID))
}

// Attach returns a writer to the stdin of the task or of one exec.
func (t *Task) Attach(ctx context.Context, execID string) (io.WriteCloser, error) {
	if err := t.refuseDead("attach to"); err != nil {
		return nil, err
	}
	w, err := t.client.Attach(ctx, execID)
	return w, t.check(err)
}

// Delete removes one exited exec, or the task: the shim deletes the
// container with the runtime and exits (force kills a running one); a
// dead shim's leftovers are cleaned up. It returns the final state.
func (m *Manager) Delete(ctx context.Context, ns, id, execID string, force bool) (State, error) {
	t, err := m.Get(ns, id)
	if err != nil {
		return State{}, err
	}
	if execID != "" {
		if err := t.refuseDead("delete exec of"); err != nil {
			return State{}, err
		}
		st, err := t.client.Delete(ctx, execID, false)
		return fromShim(st), t.check(err)
	}
	t.delMu.Lock()
	defer t.delMu.Unlock()
	if !m.current(t) {
		// Ended meanwhile: deleted, or its dead shim cleaned up.
		return State{}, fmt.Errorf("container %s has no task: %w", id, errdefs.ErrNotFound)
	}
	if _, dead := t.deadState(); !dead {
		Fault(FaultBeforeShimDelete)
		dctx, cancel := m.bound(ctx)
		st, err := t.client.Delete(dctx, "", force)
		cancel()
		if err == nil {
			Fault(FaultAfterShimDelete)
			m.forget(t)
			m.cfg.Publish(ns, TopicDelete, id, map[string]string{"exit_status": strconv.Itoa(st.ExitStatus)})
			return fromShim(st), nil
		}
		if err = t.check(err); !errors.Is(err, errdefs.ErrFailedPrecondition) || t.refuseDead("") == nil {
			return State{}, err
		}
	}
	st, _ := t.deadState()
	cctx, cancel := m.bound(ctx)
	defer cancel()
	if err := m.reapLocked(cctx, t); err != nil {
		return State{}, err
	}
	return st, nil
}

// List returns the tasks the manager tracks (those still starting too).
func (m *Manager) List() []*Task {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*Task, 0, len(m.tasks))
	for _, t := range m.tasks {
		out = append(out, t)
	}
	return out
}

// Dead reports whether the task's shim is gone. A shim not yet known
// dead is looked at (its process); one found gone is cleaned up in the
// background, as a watcher would (a shim killed after its init exited has
// no Wait in flight to notice it).
func (t *Task) Dead() bool {
	if _, dead := t.deadState(); dead {
		return true
	}
	if t.shimAlive() {
		return false
	}
	t.died(errors.New("its process is gone"))
	return true
}

// kindError gives an error a kind from errdefs without changing its text.
type kindError struct{ err, kind error }

func (e kindError) Error() string   { return e.err.Error() }
func (e kindError) Unwrap() []error { return []error{e.err, e.kind} }

// exitedMeanwhile tells whether the init has exited, giving the shim a
// moment to reap it.
func (t *Task) exitedMeanwhile(ctx context.Context) bool {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := t.client.Wait(wctx, "")
	return err == nil && st.Status == StatusStopped
}

// AttachOutput returns the live output of the task or of one exec (see
// shim.Client.AttachOutput); Close it when done.
func (t *Task) AttachOutput(ctx context.Context, execID string) (*shim.OutputStream, error) {
	if err := t.refuseDead("attach to the output of"); err != nil {
		return nil, err
	}
	o, err := t.client.AttachOutput(ctx, execID)
	return o, t.check(err)
}
