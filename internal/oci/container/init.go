package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/hook"
	"github.com/gantry-project/gantry/internal/oci/linux/capability"
	"github.com/gantry-project/gantry/internal/oci/linux/console"
	"github.com/gantry-project/gantry/internal/oci/linux/identity"
	"github.com/gantry-project/gantry/internal/oci/linux/label"
	"github.com/gantry-project/gantry/internal/oci/linux/rlimit"
	"github.com/gantry-project/gantry/internal/oci/linux/rootfs"
	"github.com/gantry-project/gantry/internal/oci/linux/sched"
	"github.com/gantry-project/gantry/internal/oci/linux/seccomp"
	"github.com/gantry-project/gantry/internal/oci/nsexec"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Init is the container side of create: it runs in the process the C
// bootstrap left in the container's namespaces, finishes the container
// (filesystem, process attributes), reports ready, waits on the exec fifo
// and executes the user's process. It returns only on failure.
func Init() error {
	runtime.LockOSThread()
	tracef("init: go main")
	fd, err := strconv.Atoi(os.Getenv(nsexec.EnvInitFD))
	if err != nil {
		return fmt.Errorf("init: %s not set: gantry-oci init is started by gantry-oci create", nsexec.EnvInitFD)
	}
	os.Unsetenv(nsexec.EnvInitFD)
	os.Unsetenv("GANTRY_OCI_TRACE")
	// The container must never see the runtime's memory or files.
	unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	sock := os.NewFile(uintptr(fd), "init-sock")
	m, err := readFrame(sock)
	if err != nil || m.Type != msgConfig || m.Config == nil {
		return fmt.Errorf("init: read config: %v", err)
	}
	cfg := m.Config
	tracef("init: config received")
	// Every fd past the preserved ones closes on exec, before anything
	// (the cwd included) is resolved in the container.
	if err := markCloexecFrom(3 + cfg.PreserveFDs); err != nil {
		return reportInit(sock, fmt.Errorf("mark fds close-on-exec: %w", err))
	}
	// Read what needs the host's /proc while it is still there.
	if _, err := capability.Last(); err != nil {
		return reportInit(sock, fmt.Errorf("process.capabilities: %w", err))
	}
	if cfg.Spec.Process != nil {
		cfg.Spec.Process.Capabilities = boundedCaps(cfg.Spec.Process.Capabilities)
	}
	run := initContainer
	if cfg.Exec {
		run = func(cfg *InitConfig, w io.Writer, rd io.Reader) error {
			return finishProcess(cfg, w, rd, hookState(cfg.ID, cfg.Spec, cfg.Bundle, cfg.Pid, "running"))
		}
	}
	if err := run(cfg, sock, sock); err != nil {
		return reportInit(sock, err)
	}
	return nil
}

func reportInit(w io.Writer, err error) error {
	// The parent reports the error; if it is gone (it failed first and
	// closed the socket), it has reported its own. Exit quietly.
	send(w, message{Type: msgError, Error: err.Error()})
	os.Exit(1)
	return nil
}

func initContainer(cfg *InitConfig, w io.Writer, rd io.Reader) error {
	s := cfg.Spec
	ctx := context.Background()
	rc := &rootfs.Config{
		Spec:     s,
		Rootfs:   cfg.Rootfs,
		Bundle:   cfg.Bundle,
		NoPivot:  cfg.NoPivot,
		UserNS:   cfg.NewUserNS || joinsNamespace(s, specs.UserNamespace),
		CgroupNS: cfg.NewCgroupNS,
	}
	// A new network namespace starts with lo down: bring it up, as runc
	// does, while the init is still root with every capability. One joined
	// by path is left as its owner set it up.
	if i := newNetNSIndex(s); i >= 0 {
		if err := loopbackUp(); err != nil {
			return fmt.Errorf("linux.namespaces[%d] (network): bring up the loopback interface lo: %w", i, err)
		}
	}
	if cfg.NewMountNS {
		if err := rootfs.Prepare(rc); err != nil {
			return err
		}
	}
	tracef("init: rootfs prepared")
	if err := send(w, message{Type: msgHooks}); err != nil {
		return fmt.Errorf("report to runtime: %w", err)
	}
	if _, err := expect(rd, msgHooksDone); err != nil {
		return err
	}
	st := hookState(cfg.ID, s, cfg.Bundle, cfg.Pid, "created")
	if s.Hooks != nil {
		if err := hook.RunAll(ctx, "createContainer", s.Hooks.CreateContainer, st); err != nil {
			return err
		}
	}
	if cfg.NewMountNS {
		if err := rootfs.PivotRoot(rc); err != nil {
			return err
		}
	} else if err := unix.Chroot(cfg.Rootfs); err != nil {
		return fmt.Errorf("root.path: chroot %s: %w", cfg.Rootfs, err)
	} else if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	// A missing cwd is created (runc, docker's WORKDIR), now that "/" is
	// the container's root, before the root is made read-only and before
	// the user switch. Not for exec: a missing --cwd is an error there.
	if p := s.Process; p != nil && p.Cwd != "" {
		if err := createCwd(p.Cwd); err != nil {
			return fmt.Errorf("process.cwd %q: create it in the container: %w", p.Cwd, err)
		}
	}
	if cfg.NewUTSNS {
		if s.Hostname != "" {
			if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
				return fmt.Errorf("hostname %q: %w", s.Hostname, err)
			}
		}
		if s.Domainname != "" {
			if err := unix.Setdomainname([]byte(s.Domainname)); err != nil {
				return fmt.Errorf("domainname %q: %w", s.Domainname, err)
			}
		}
	}
	// sysctls before Finalize: it makes /proc/sys read-only.
	for k, v := range s.Linux.Sysctl {
		path := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		if err := os.WriteFile(path, []byte(v), 0); err != nil {
			return fmt.Errorf("linux.sysctl %s=%q: %w", k, v, err)
		}
	}
	if cfg.NewMountNS {
		if err := rootfs.Finalize(rc); err != nil {
			return err
		}
	}
	tracef("init: pivoted and finalized")
	// The container's process starts with umask 022 unless
	// process.user.umask says otherwise (applied with the user), as runc
	// gives it: not the umask of whoever ran create. An exec keeps its
	// caller's, as runc's does.
	unix.Umask(0o022)
	return finishProcess(cfg, w, rd, st)
}

// finishProcess applies the process attributes of cfg.Spec.Process (or of
// the exec'd process), reports ready, waits for start (not for exec) and
// executes the process. It runs for both entry paths: a new container's
// init and a process exec'd into a running container.
func finishProcess(cfg *InitConfig, w io.Writer, rd io.Reader, st *specs.State) error {
	s := cfg.Spec
	p := s.Process
	ctx := context.Background()
	if p == nil {
		// config.json without a process: created, but it cannot start.
		if err := send(w, message{Type: msgReady}); err != nil {
			return fmt.Errorf("report ready: %w", err)
		}
		var b [1]byte
		unix.Read(cfg.FifoFD, b[:])
		os.Exit(1)
	}
	if cfg.ConsoleFD >= 0 {
		if err := setupConsole(cfg.ConsoleFD, p, cfg.Exec); err != nil {
			return err
		}
	}
	if !cfg.NoNewKeyring && !cfg.Exec {
		// a fresh session keyring, so the container cannot read the host's keys
		if _, err := unix.KeyctlJoinSessionKeyring("_ses." + cfg.ID); err != nil && !errors.Is(err, unix.ENOSYS) && !errors.Is(err, unix.EACCES) {
			return fmt.Errorf("join session keyring: %w", err)
		}
	}
	if p.OOMScoreAdj != nil {
		// the error names process.oomScoreAdj
		if err := sched.SetOOMScoreAdj(0, *p.OOMScoreAdj); err != nil {
			return err
		}
	}
	if p.Scheduler != nil {
		if err := sched.SetScheduler(0, p.Scheduler); err != nil {
			return fmt.Errorf("process.scheduler: %w", err)
		}
	}
	if p.IOPriority != nil {
		if err := sched.SetIOPriority(0, p.IOPriority); err != nil {
			return fmt.Errorf("process.ioPriority: %w", err)
		}
	}
	if a := p.ExecCPUAffinity; a != nil && a.Initial != "" {
		if err := sched.SetCPUAffinity(0, a.Initial); err != nil {
			return fmt.Errorf("process.execCPUAffinity.initial: %w", err)
		}
	}
	if s.Linux.Personality != nil {
		if err := sched.SetPersonality(s.Linux.Personality); err != nil {
			return fmt.Errorf("linux.personality: %w", err)
		}
	}
	if err := label.ApplyProcess(p.ApparmorProfile, p.SelinuxLabel); err != nil {
		return err
	}
	env := withHome(p.Env, p.User.UID)
	// The runtime normally sends the filter compiled (and cached); compile
	// it here only otherwise, and before the rlimits below (a small
	// RLIMIT_AS could starve libseccomp). Installing it allocates nothing.
	var filter *seccomp.Program
	if len(cfg.Seccomp) > 0 {
		filter = &seccomp.Program{}
		if err := filter.UnmarshalBinary(cfg.Seccomp); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	} else if sc := s.Linux.Seccomp; sc != nil {
		var err error
		if filter, err = seccomp.Prepare(sc); err != nil {
			return fmt.Errorf("linux.seccomp: %w", err)
		}
	}
	if filter != nil && !p.NoNewPrivileges {
		if err := installSeccomp(cfg, filter); err != nil {
			return err
		}
	}
	// rlimits while still privileged (raising a hard limit needs it), by
	// the process itself (a prlimit from outside needs CAP_SYS_RESOURCE
	// once the uid differs).
	if err := rlimit.Apply(0, p.Rlimits); err != nil {
		return err
	}
	// The cwd is entered before the user switch, as runc does, so that a
	// directory that the runtime's root may enter and the user may not
	// (say /root) works; only when root is refused (EACCES, EPERM: a
	// runtime without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH, root
	// squashed by NFS, a directory of an unmapped owner in a user
	// namespace) is it tried again as the user, who may own it.
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	cwdErr := unix.Chdir(cwd)
	if cwdErr != nil && !errors.Is(cwdErr, unix.EACCES) && !errors.Is(cwdErr, unix.EPERM) {
		return fmt.Errorf("process.cwd %q: %w", cwd, cwdErr)
	}
	if err := identity.Switch(p.User); err != nil {
		return fmt.Errorf("process.user: %w", err)
	}
	if cwdErr != nil {
		if err := unix.Chdir(cwd); err != nil {
			return fmt.Errorf("process.cwd %q: %w", cwd, err)
		}
	}
	// A cwd reached through a leaked fd would be outside the root: the
	// kernel then reports it "(unreachable)" (CVE-2024-21626). unix.Getwd
	// turns that into ENOENT, so ask the kernel directly.
	// (A seccomp profile may forbid getcwd: then C's closing of leaked
	// fds is the defence.)
	// It fails closed when the kernel cannot say (a path too long for the
	// buffer, an unlinked directory).
	wd, err := kernelCwd()
	switch {
	case err == nil && !strings.HasPrefix(wd, "/"):
		return fmt.Errorf("process.cwd %q: resolves outside the container (%q): %w", cwd, wd, errdefs.ErrInvalidArgument)
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ERANGE), errors.Is(err, unix.ENAMETOOLONG):
		return fmt.Errorf("process.cwd %q: cannot tell whether it lies inside the container: getcwd: %w", cwd, err)
	}
	path, err := lookPath(p.Args[0], env)
	if err != nil {
		return fmt.Errorf("process.args[0]: %w", err)
	}
	if err := capability.Apply(p.Capabilities); err != nil {
		return fmt.Errorf("process.capabilities: %w", err)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("process.noNewPrivileges: %w", err)
		}
	}
	if filter != nil && p.NoNewPrivileges {
		if err := installSeccomp(cfg, filter); err != nil {
			return err
		}
	}
	if a := p.ExecCPUAffinity; a != nil && a.Final != "" {
		if err := sched.SetCPUAffinity(0, a.Final); err != nil {
			return fmt.Errorf("process.execCPUAffinity.final: %w", err)
		}
	}
	tracef("init: process set up")
	if err := send(w, message{Type: msgReady}); err != nil {
		return fmt.Errorf("report ready: %w", err)
	}

	if cfg.Exec {
		tracef("exec: exec")
		err = unix.Exec(path, p.Args, env)
		fmt.Fprintf(os.Stderr, "gantry-oci: exec %s: %v\n", path, err)
		os.Exit(127)
	}
	// Wait for "start": it writes one byte into the exec fifo.
	var b [1]byte
	for {
		n, err := unix.Read(cfg.FifoFD, b[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != 1 {
			os.Exit(1)
		}
		break
	}
	if s.Hooks != nil && len(s.Hooks.StartContainer) > 0 {
		if err := hook.RunAll(ctx, "startContainer", s.Hooks.StartContainer, st); err != nil {
			fmt.Fprintln(os.Stderr, "gantry-oci:", err)
			os.Exit(1)
		}
	}
	tracef("init: exec")
	err = unix.Exec(path, p.Args, env)
	fmt.Fprintf(os.Stderr, "gantry-oci: exec %s: %v\n", path, err)
	os.Exit(127)
	return nil
}

// markCloexecFrom makes every fd from lo up close on exec: one
// close_range(2), or, before Linux 5.11 (no CLOSE_RANGE_CLOEXEC), each fd
// that /proc/self/fd lists.
func markCloexecFrom(lo int) error {
	err := unix.CloseRange(uint(lo), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		return err
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < lo {
			continue
		}
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("fd %d: %w", fd, err)
		}
	}
	return nil
}

// kernelCwd returns what getcwd(2) reports, unreachable paths included.
func kernelCwd() (string, error) {
	buf := make([]byte, unix.PathMax)
	n, err := unix.Getcwd(buf)
	if err != nil {
		return "", err
	}
	if n < 1 || n > len(buf) || buf[n-1] != 0 {
		return "", unix.ERANGE
	}
	return string(buf[:n-1]), nil
}

func joinsNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t && ns.Path != "" {
			return true
		}
	}
	return false
}

func setupConsole(fd int, p *specs.Process, exec bool) error {
	conn := os.NewFile(uintptr(fd), "console-socket")
	defer conn.Close()
	master, slave, err := console.NewPty()
	if err != nil {
		return fmt.Errorf("process.terminal: %w", err)
	}
	defer master.Close()
	if p.ConsoleSize != nil {
		if err := console.SetSize(master, p.ConsoleSize.Width, p.ConsoleSize.Height); err != nil {
			return fmt.Errorf("process.consoleSize: %w", err)
		}
	}
	if err := console.SendFd(conn, master.Name(), master); err != nil {
		return fmt.Errorf("send pty master to console socket: %w", err)
	}
	if !exec {
		if err := bindConsole(slave); err != nil {
			return err
		}
	}
	if err := console.SetupSlave(slave); err != nil {
		return fmt.Errorf("process.terminal: %w", err)
	}
	return nil
}

func installSeccomp(cfg *InitConfig, filter *seccomp.Program) error {
	sc := cfg.Spec.Linux.Seccomp
	nfd, err := filter.Install()
	if err != nil {
		return fmt.Errorf("linux.seccomp: %w", err)
	}
	if nfd < 0 {
		return nil
	}
	defer unix.Close(nfd)
	if cfg.ListenerFD < 0 {
		return fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
	}
	st := specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      cfg.Pid,
		Metadata: sc.ListenerMetadata,
		State:    *hookState(cfg.ID, cfg.Spec, cfg.Bundle, cfg.Pid, "creating"),
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := unix.Sendmsg(cfg.ListenerFD, data, unix.UnixRights(nfd), nil, 0); err != nil {
		return fmt.Errorf("linux.seccomp.listenerPath: send notify fd: %w", err)
	}
	unix.Close(cfg.ListenerFD)
	return nil
}

// lookPath finds name in the container, with the PATH of env.
func lookPath(name string, env []string) (string, error) {
	check := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return fmt.Errorf("is a directory")
		}
		if err := unix.Faccessat(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS); err != nil {
			return err
		}
		return nil
	}
	if strings.Contains(name, "/") {
		if err := check(name); err != nil {
			return "", fmt.Errorf("exec %q: %w", name, err)
		}
		return name, nil
	}
	path := defaultPath
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if check(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec %q: executable file not found in $PATH", name)
}

// bindConsole makes /dev/console the container's pty, as runc does, when
// the container has a /dev of its own.
func bindConsole(slave string) error {
	fi, err := os.Lstat("/dev/console")
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("/dev/console: %w", err)
		}
		f, err := os.OpenFile("/dev/console", os.O_CREATE|os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			if errors.Is(err, unix.EROFS) {
				return nil
			}
			return fmt.Errorf("create /dev/console: %w", err)
		}
		f.Close()
	} else if fi.Mode()&os.ModeSymlink != 0 {
		return fmt.Errorf("/dev/console is a symlink")
	}
	if err := unix.Mount(slave, "/dev/console", "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind %s on /dev/console: %w", slave, err)
	}
	return nil
}

// withHome adds HOME from the container's /etc/passwd (or "/") when env
// has none, as runc does and as programs expect.
func withHome(env []string, uid uint32) []string {
	for _, e := range env {
		if strings.HasPrefix(e, "HOME=") {
			return env
		}
	}
	home := "/"
	if data, err := readRegular("/etc/passwd"); err == nil {
		for _, line := range strings.Split(string(data), "\n") {
			f := strings.Split(line, ":")
			if len(f) >= 6 && f[2] == strconv.FormatUint(uint64(uid), 10) && f[5] != "" {
				home = f[5]
				break
			}
		}
	}
	return append(append([]string{}, env...), "HOME="+home)
}

// readRegular reads path if it is a regular file: a FIFO the container
// put there must not block the runtime.
func readRegular(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	return io.ReadAll(f)
}

// boundedCaps drops from c the capabilities that gantry-oci itself does not
// hold in its bounding set (the host withholds them; no process could grant
// them), with a warning on stderr, as runc ends up doing. A container never
// gets more than it asked for.
func boundedCaps(c *specs.LinuxCapabilities) *specs.LinuxCapabilities {
	r, dropped := boundCaps(c)
	warnDropped(dropped)
	return r
}

// boundCaps is boundedCaps without the warning: it returns the names it
// dropped.
func boundCaps(c *specs.LinuxCapabilities) (*specs.LinuxCapabilities, []string) {
	if c == nil {
		return nil, nil
	}
	var dropped []string
	filter := func(list []string) []string {
		out := list[:0:0]
		for _, name := range list {
			n, err := capability.Parse(name)
			if err == nil {
				if ok, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(n), 0, 0, 0); err == nil && ok == 0 {
					dropped = append(dropped, name)
					continue
				}
			}
			out = append(out, name)
		}
		return out
	}
	r := &specs.LinuxCapabilities{
		Bounding:    filter(c.Bounding),
		Effective:   filter(c.Effective),
		Inheritable: filter(c.Inheritable),
		Permitted:   filter(c.Permitted),
		Ambient:     filter(c.Ambient),
	}
	return r, dropped
}

func warnDropped(dropped []string) {
	if len(dropped) > 0 {
		fmt.Fprintf(os.Stderr, "gantry-oci: warning: capabilities not held by the runtime are not granted: %s\n", strings.Join(unique(dropped), " "))
	}
}

func unique(list []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range list {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
