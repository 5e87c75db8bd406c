package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/linux/console"
	"github.com/gantry-project/gantry/internal/oci/nsexec"
	"github.com/gantry-project/gantry/internal/oci/spec"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// ExecOptions are the flags of "exec".
type ExecOptions struct {
	ID             string
	ProcessFile    string // --process: a runtime-spec process JSON ("-": stdin)
	Args           []string
	Tty            bool
	ConsoleSocket  string
	Detach         bool
	PidFile        string
	Cwd            string
	Env            []string
	User           string // uid[:gid]
	AdditionalGids []int64
	Caps           []string
	NoNewPrivs     bool
	Apparmor       string
	ProcessLabel   string
	PreserveFDs    int
	IgnorePaused   bool
	Cgroup         string
}

// nsFiles maps runtime-spec namespace types to their /proc/PID/ns names.
var nsFiles = map[specs.LinuxNamespaceType]string{
	specs.UserNamespace:    "user",
	specs.MountNamespace:   "mnt",
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// Exec runs a new process in a running container: it joins every
// namespace of the container's init (user and mount included, done by the
// C bootstrap), its cgroup, and gets the container's capabilities, seccomp
// filter, rlimits, no_new_privs and labels unless the process says
// otherwise. Detached it returns once the process runs; else it waits and
// returns the process's exit status.
func (r *Runtime) Exec(ctx context.Context, o ExecOptions) (int, error) {
	tracef("exec: start")
	// Enabling a signal for forwarding costs a round trip to the Go
	// runtime's signal-mask thread (about 1 ms for all of them): it runs
	// alongside the set-up below. The signals that would end or stop
	// gantry-oci (execFirstSignals) are enabled before the process can
	// exist; the others, which a Go program ignores until then, right
	// after, while the process starts. The handlers are not reset when
	// Exec returns (signal.Stop costs as much again): gantry-oci exits
	// then.
	sigs := make(chan os.Signal, 32)
	notified := make(chan struct{})
	if o.Detach {
		close(notified)
	} else {
		go func() {
			signal.Notify(sigs, execFirstSignals...)
			close(notified)
			signal.Notify(sigs)
		}()
	}
	// The bootstrap process starts (a fork and exec, most of a
	// millisecond) while the state is read and the process planned: it
	// waits for its message. Without a terminal it needs no fds but the
	// preserved ones and the socket, unless the container has a seccomp
	// listener; then it is started again with them.
	var early chan startedBootstrap
	var v *state.ExecView
	var err error
	if !o.Tty && o.ConsoleSocket == "" {
		// The state is read on another goroutine while this one forks:
		// a goroutine started for the fork instead waited, in
		// measurements, for this one to block.
		type viewResult struct {
			v   *state.ExecView
			err error
		}
		viewc := make(chan viewResult, 1)
		go func() {
			v, err := r.loadExecView(o.ID)
			viewc <- viewResult{v, err}
		}()
		b, berr := startExecBootstrap(o.PreserveFDs)
		early = make(chan startedBootstrap, 1)
		early <- startedBootstrap{b, berr}
		defer func() {
			if early != nil {
				if s := <-early; s.b != nil {
					s.b.abandon()
				}
			}
		}()
		res := <-viewc
		v, err = res.v, res.err
	} else {
		v, err = r.loadExecView(o.ID)
	}
	// Only the part of the state that exec needs in the common case: the
	// whole spec is decoded below when it is needed.
	if err != nil {
		return -1, err
	}
	c := v.Container()
	switch st := r.status(c); st {
	case state.Running, state.Created:
	case state.Paused:
		if !o.IgnorePaused {
			return -1, fmt.Errorf("exec in container %q: it is paused (use --ignore-paused): %w", o.ID, errdefs.ErrFailedPrecondition)
		}
	default:
		return -1, fmt.Errorf("exec in container %q: it is %s: %w", o.ID, st, errdefs.ErrFailedPrecondition)
	}
	if !v.HasLinux {
		return -1, fmt.Errorf("state of %q: the config has no linux section", o.ID)
	}
	cgPaths, err := subCgroups(c.CgroupPaths, o.Cgroup)
	if err != nil {
		return -1, err
	}
	proc, err := execProcess(v.Process, o)
	if err != nil {
		return -1, err
	}
	if proc.Terminal && o.ConsoleSocket == "" && o.Detach {
		return -1, fmt.Errorf("exec --tty --detach needs --console-socket: %w", errdefs.ErrInvalidArgument)
	}
	if !proc.Terminal && o.ConsoleSocket != "" {
		return -1, fmt.Errorf("--console-socket given without a terminal (--tty or process.terminal): %w", errdefs.ErrInvalidArgument)
	}

	boot := &nsexec.Bootstrap{}
	for _, ns := range v.Namespaces {
		file, ok := nsFiles[ns.Type]
		if !ok {
			continue
		}
		boot.Joins = append(boot.Joins, nsexec.Join{Type: file, Path: fmt.Sprintf("/proc/%d/ns/%s", c.Pid, file)})
		if ns.Type == specs.PIDNamespace || ns.Type == specs.TimeNamespace {
			boot.Fork = true
		}
	}
	boot.CgroupV1, boot.CgroupV2 = cgroupDirs(cgPaths)

	// The whole state, spec included, only when it is needed: a profile
	// not compiled yet, or the Go init.
	var full *state.Container
	loadFull := func() error {
		if full == nil {
			f, err := r.Store.Load(o.ID)
			if err != nil {
				return err
			}
			if f.Spec == nil || f.Spec.Linux == nil {
				return fmt.Errorf("state of %q: the config has no linux section", o.ID)
			}
			full = f
		}
		return nil
	}
	var filter []byte
	if v.Seccomp {
		if filter = cachedSeccomp(r.Store.Root, v.SeccompKey); filter == nil {
			if err := loadFull(); err != nil {
				return -1, err
			}
			if sc := full.Spec.Linux.Seccomp; sc != nil {
				if filter, _, err = compiledSeccomp(r.Store.Root, sc); err != nil {
					return -1, err
				}
			}
		}
	}
	// The common case needs no Go init: the C bootstrap sets the process
	// up and executes it (execfast.go).
	target := execTarget{
		namespaces:   v.Namespaces,
		personality:  v.Personality,
		seccomp:      v.Seccomp,
		listenerPath: v.ListenerPath,
	}
	var cfg *InitConfig
	if plan, why := r.fastExec(target, proc, o.PreserveFDs, filter); plan != nil {
		boot.Exec = plan
		tracef("exec: fast path")
	} else {
		tracef("exec: go path (%s)", why)
		if err := loadFull(); err != nil {
			return -1, err
		}
		sp := *full.Spec
		sp.Process = proc
		sp.Hooks = nil
		linux := *full.Spec.Linux
		sp.Linux = &linux
		cfg = &InitConfig{
			ID: full.ID, Spec: &sp, Bundle: full.Bundle, Rootfs: full.Rootfs,
			PreserveFDs: o.PreserveFDs, Exec: true, ConsoleFD: -1, ListenerFD: -1, FifoFD: -1,
			Seccomp: filter,
		}
	}

	// The Go init's extra fds: the console socket, the seccomp listener.
	var extra []*os.File
	var consoleLocal *os.File
	if cfg != nil && proc.Terminal {
		var conn *os.File
		if o.ConsoleSocket != "" {
			conn, err = console.DialSocket(o.ConsoleSocket)
			if err != nil {
				return -1, fmt.Errorf("--console-socket %s: %w", o.ConsoleSocket, err)
			}
		} else {
			consoleLocal, conn, err = socketPair("console-local", "console-remote")
			if err != nil {
				return -1, err
			}
			defer consoleLocal.Close()
		}
		defer conn.Close()
		cfg.ConsoleFD = extraFD(o.PreserveFDs, len(extra))
		extra = append(extra, conn)
	}
	if cfg != nil && v.Seccomp && v.ListenerPath != "" {
		conn, err := dialSeccompListener(v.ListenerPath)
		if err != nil {
			return -1, err
		}
		defer conn.Close()
		cfg.ListenerFD = extraFD(o.PreserveFDs, len(extra))
		extra = append(extra, conn)
	}

	var bs *execBootstrap
	if early != nil {
		s := <-early
		early = nil
		if s.err == nil && len(extra) == 0 {
			bs = s.b
		} else if s.b != nil {
			s.b.abandon()
		}
	}
	if bs == nil {
		if bs, err = startExecBootstrap(o.PreserveFDs, extra...); err != nil {
			return -1, err
		}
	}
	defer bs.sock.Close()
	parentSock := bs.sock
	tracef("exec: bootstrap started")
	fail := func(err error, pids ...int) (int, error) {
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
		bs.kill()
		bs.wait()
		for _, p := range pids {
			var ws unix.WaitStatus
			unix.Wait4(p, &ws, 0, nil)
		}
		return -1, err
	}
	boot.Keep = bs.keep
	rd := bufio.NewReader(parentSock)
	// The process cannot exist before the message is sent: signals are
	// forwarded from its start.
	<-notified
	tracef("exec: signals set")
	pid, err := nsexec.Drive(parentSock, rd, boot, nil)
	if err != nil {
		if boot.Exec != nil {
			// The process may have failed before the bootstrap
			// reported its pid: it is still ours to reap. (The
			// bootstrap goes first, in case it still waits for a
			// message that was never sent: then EOF comes at once.)
			bs.kill()
			if late := nsexec.LatePid(rd); late > 0 {
				return fail(err, late)
			}
		}
		return fail(err)
	}
	tracef("exec: bootstrap done")
	if boot.Exec != nil {
		// The socket is close-on-exec in the process: EOF means it has
		// executed the command; else it reports what failed.
		if err := nsexec.Executed(rd); err != nil {
			return fail(err, pid)
		}
		if boot.Fork {
			if err := bs.wait(); err != nil {
				return fail(fmt.Errorf("exec bootstrap: %w", err), pid)
			}
		}
	} else {
		cfg.Pid = pid
		if err := send(parentSock, message{Type: msgConfig, Config: cfg}); err != nil {
			return fail(fmt.Errorf("send config to exec process: %w", err), pid)
		}
		// Reap the bootstrap only now: the process is already reading its config.
		if boot.Fork {
			if err := bs.wait(); err != nil {
				return fail(fmt.Errorf("exec bootstrap: %w", err), pid)
			}
		}
		if _, err := expect(rd, msgReady); err != nil {
			return fail(err, pid)
		}
		tracef("exec: process ready")
		// The socket is close-on-exec in the process: EOF means it has
		// executed the command (or died trying), so a pid file and a detached
		// return never name a process that is still gantry-oci.
		io.Copy(io.Discard, rd)
	}
	tracef("exec: process executed")
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return fail(err, pid)
		}
	}
	if o.Detach {
		return 0, nil
	}
	var master *os.File
	drain := func() {}
	if consoleLocal != nil {
		master, err = console.RecvFd(consoleLocal)
		if err != nil {
			return fail(fmt.Errorf("receive pty master: %w", err), pid)
		}
		defer master.Close()
		restore := rawTerminal(os.Stdin)
		defer restore()
		resize(master)
		drain = copyTerminal(master)
	}
	code, err := waitForwarding(pid, sigs, master)
	tracef("exec: process exited")
	drain()
	return code, err
}

// execFirstSignals are the signals whose default action in a Go program
// is not to ignore them: exit (SIGHUP, SIGINT, SIGTERM), crash with a
// stack dump, stop (SIGTSTP, SIGTTIN, SIGTTOU; no Go handler until
// notified), SIGPIPE. A foreground exec enables them before the process
// can exist, so that it never ends or stops in place of the process it
// forwards to; only those marked notifiable in the runtime's table
// (not the synchronous ones) cost a round trip.
var execFirstSignals = []os.Signal{
	unix.SIGHUP, unix.SIGINT, unix.SIGQUIT, unix.SIGILL, unix.SIGTRAP, unix.SIGABRT,
	unix.SIGBUS, unix.SIGFPE, unix.SIGSEGV, unix.SIGPIPE, unix.SIGTERM, unix.SIGSTKFLT,
	unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGSYS,
}

// waitForwarding waits for pid (a child of ours), forwarding signals to it,
// and returns its exit status (128+n for a signal n).
func waitForwarding(pid int, sigs chan os.Signal, master *os.File) (int, error) {
	var ws unix.WaitStatus
	done := make(chan error, 1)
	go func() {
		for {
			_, err := unix.Wait4(pid, &ws, 0, nil)
			if err == unix.EINTR {
				continue
			}
			done <- err
			return
		}
	}()
	for {
		select {
		case sig := <-sigs:
			switch s := sig.(unix.Signal); s {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
			case unix.SIGWINCH:
				if master != nil {
					resize(master)
				}
			default:
				unix.Kill(pid, s)
			}
		case err := <-done:
			if err != nil && !errors.Is(err, unix.ECHILD) {
				return -1, fmt.Errorf("wait for process %d: %w", pid, err)
			}
			switch {
			case ws.Exited():
				return ws.ExitStatus(), nil
			case ws.Signaled():
				return 128 + int(ws.Signal()), nil
			}
			return 0, nil
		}
	}
}

// execProcess builds the process to exec from --process or from the
// container's process and the flags.
func execProcess(base *specs.Process, o ExecOptions) (*specs.Process, error) {
	var p specs.Process
	if o.ProcessFile != "" {
		var data []byte
		var err error
		if o.ProcessFile == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(o.ProcessFile)
		}
		if err != nil {
			return nil, fmt.Errorf("--process %s: %w", o.ProcessFile, err)
		}
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("--process %s: invalid JSON: %v: %w", o.ProcessFile, err, errdefs.ErrInvalidArgument)
		}
		if err := spec.ValidateProcess(&p); err != nil {
			return nil, fmt.Errorf("--process %s: %w", o.ProcessFile, err)
		}
		return &p, nil
	}
	if len(o.Args) == 0 {
		return nil, fmt.Errorf("exec: a command or --process is required: %w", errdefs.ErrInvalidArgument)
	}
	if base != nil {
		p = *base
		p.Env = append([]string{}, base.Env...)
		if base.Capabilities != nil {
			caps := *base.Capabilities
			p.Capabilities = &caps
		}
	}
	p.Args = o.Args
	p.Terminal = o.Tty
	p.ConsoleSize = nil
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	for _, e := range o.Env {
		k, _, _ := strings.Cut(e, "=")
		replaced := false
		for i, old := range p.Env {
			if strings.HasPrefix(old, k+"=") {
				p.Env[i], replaced = e, true
			}
		}
		if !replaced {
			p.Env = append(p.Env, e)
		}
	}
	if o.User != "" {
		u, g, hasGid := strings.Cut(o.User, ":")
		uid, err := strconv.ParseUint(u, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("--user %q: want uid[:gid]: %w", o.User, errdefs.ErrInvalidArgument)
		}
		p.User.UID = uint32(uid)
		if hasGid {
			gid, err := strconv.ParseUint(g, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("--user %q: want uid[:gid]: %w", o.User, errdefs.ErrInvalidArgument)
			}
			p.User.GID = uint32(gid)
		}
	}
	for _, g := range o.AdditionalGids {
		if g < 0 || g > 1<<32-1 {
			return nil, fmt.Errorf("--additional-gids %d: out of range: %w", g, errdefs.ErrInvalidArgument)
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	if len(o.Caps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		for _, c := range o.Caps {
			c = strings.ToUpper(c)
			if !strings.HasPrefix(c, "CAP_") {
				c = "CAP_" + c
			}
			p.Capabilities.Bounding = append(p.Capabilities.Bounding, c)
			p.Capabilities.Effective = append(p.Capabilities.Effective, c)
			p.Capabilities.Permitted = append(p.Capabilities.Permitted, c)
		}
	}
	if o.NoNewPrivs {
		p.NoNewPrivileges = true
	}
	if o.Apparmor != "" {
		p.ApparmorProfile = o.Apparmor
	}
	if o.ProcessLabel != "" {
		p.SelinuxLabel = o.ProcessLabel
	}
	if err := spec.ValidateProcess(&p); err != nil {
		return nil, err
	}
	return &p, nil
}

// subCgroups applies exec --cgroup to the container's cgroup paths, as runc
// does: "PATH" puts the process in the sub-cgroup PATH of every hierarchy,
// "CTRL[,CTRL...]:PATH" only in those controllers' hierarchies (v1; "" or
// "unified" names the v2 one). The sub-cgroup must exist and stay below the
// container's cgroup.
func subCgroups(paths map[string]string, spec string) (map[string]string, error) {
	if spec == "" {
		return paths, nil
	}
	ctrls, sub, found := strings.Cut(spec, ":")
	if !found {
		ctrls, sub = "", spec
	}
	clean := filepath.Clean("/" + sub)
	if clean == "/" || strings.Contains(sub, "..") {
		return nil, fmt.Errorf("exec --cgroup %q: want a sub-cgroup below the container's: %w", spec, errdefs.ErrInvalidArgument)
	}
	want := map[string]bool{}
	for _, c := range strings.Split(ctrls, ",") {
		if c == "unified" {
			c = ""
		}
		if ctrls != "" {
			want[c] = true
		}
	}
	out := make(map[string]string, len(paths))
	for key, dir := range paths {
		if len(want) > 0 && !want[key] {
			out[key] = dir
			continue
		}
		d := filepath.Join(dir, clean)
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("exec --cgroup %q: %s does not exist: %w", spec, d, errdefs.ErrNotFound)
		}
		out[key] = d
	}
	for c := range want {
		if _, ok := paths[c]; !ok {
			return nil, fmt.Errorf("exec --cgroup %q: the container has no %q cgroup: %w", spec, c, errdefs.ErrInvalidArgument)
		}
	}
	return out, nil
}
