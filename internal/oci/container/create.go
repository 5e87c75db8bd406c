package container

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/hook"
	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
	"github.com/gantry-project/gantry/internal/oci/linux/console"
	"github.com/gantry-project/gantry/internal/oci/linux/seccomp"
	"github.com/gantry-project/gantry/internal/oci/nsexec"
	"github.com/gantry-project/gantry/internal/oci/spec"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// Runtime is gantry-oci's view of its --root and global flags.
type Runtime struct {
	Store    *state.Store
	Log      *slog.Logger
	Rootless bool
}

// CreateOptions are the flags of "create" (and of "run").
type CreateOptions struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	NoPivot       bool
	NoNewKeyring  bool
	PreserveFDs   int
	Stdin         *os.File
	Stdout        *os.File
	Stderr        *os.File

	// consoleConn, when set, replaces ConsoleSocket ("run" with a terminal).
	consoleConn *os.File
	// beforeReserve, when set, is called before anything is made ("run"
	// waits for its signal handlers there).
	beforeReserve func()
}

// creation tracks what a create has made so far, to undo it on failure.
type creation struct {
	r          *Runtime
	id         string
	spec       *specs.Spec
	bundle     string
	cg         cgroup.Manager
	cgApplied  bool
	pids       []int
	hooksBegun bool
}

func (c *creation) undo() {
	for _, pid := range c.pids {
		unix.Kill(pid, unix.SIGKILL)
	}
	for _, pid := range c.pids {
		waitGone(pid, 0, 2*time.Second)
	}
	if c.cg != nil && c.cgApplied {
		killCgroup(c.cg)
		if err := c.cg.Destroy(); err != nil {
			c.r.Log.Warn("remove cgroup", "id", c.id, "error", err)
		}
	}
	if c.hooksBegun && c.spec.Hooks != nil {
		st := hookState(c.id, c.spec, c.bundle, 0, state.Stopped)
		if err := hook.RunAll(context.Background(), "poststop", c.spec.Hooks.Poststop, st); err != nil {
			c.r.Log.Warn("poststop hook", "id", c.id, "error", err)
		}
	}
	if err := c.r.Store.Remove(c.id); err != nil {
		c.r.Log.Warn("remove state", "id", c.id, "error", err)
	}
}

// Create builds the container up to the point where its init waits for
// "start". On error nothing is left behind: no state, cgroup or process.
func (r *Runtime) Create(ctx context.Context, o CreateOptions) (*state.Container, error) {
	tracef("create: start")
	if err := state.ValidateID(o.ID); err != nil {
		return nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, fmt.Errorf("bundle %q: %w", o.Bundle, err)
	}
	s, err := spec.Load(bundle)
	if err != nil {
		return nil, err
	}
	tracef("create: config read")
	if s.Linux == nil {
		return nil, fmt.Errorf("config.json: linux: required on Linux: %w", errdefs.ErrInvalidArgument)
	}
	if err := unsupported(s.Linux); err != nil {
		return nil, err
	}
	terminal := s.Process != nil && s.Process.Terminal
	if terminal && o.ConsoleSocket == "" && o.consoleConn == nil {
		return nil, fmt.Errorf("process.terminal is true: --console-socket is required: %w", errdefs.ErrInvalidArgument)
	}
	if !terminal && o.ConsoleSocket != "" {
		return nil, fmt.Errorf("--console-socket given but process.terminal is false: %w", errdefs.ErrInvalidArgument)
	}
	rootfs := s.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}

	if o.beforeReserve != nil {
		o.beforeReserve()
		tracef("create: signal handlers set")
	}
	if err := r.Store.Reserve(o.ID); err != nil {
		return nil, err
	}
	tracef("create: config loaded, id reserved")
	cr := &creation{r: r, id: o.ID, spec: s, bundle: bundle}
	c, err := r.create(ctx, cr, o, s, bundle, rootfs)
	if err != nil {
		cr.undo()
		return nil, err
	}
	return c, nil
}

func (r *Runtime) create(ctx context.Context, cr *creation, o CreateOptions, s *specs.Spec, bundle, rootfs string) (*state.Container, error) {
	boot, initCfg, err := planNamespaces(s)
	if err != nil {
		return nil, err
	}
	initCfg.ID = o.ID
	initCfg.Spec = s
	initCfg.Bundle = bundle
	initCfg.Rootfs = rootfs
	initCfg.NoPivot = o.NoPivot
	initCfg.NoNewKeyring = o.NoNewKeyring
	initCfg.PreserveFDs = o.PreserveFDs
	var seccompKey string
	if sc := s.Linux.Seccomp; sc != nil {
		if initCfg.Seccomp, seccompKey, err = compiledSeccomp(r.Store.Root, sc); err != nil {
			return nil, err
		}
	}

	if err := r.setupCgroup(cr, o, s, boot); err != nil {
		return nil, err
	}
	self, err := protectedSelf()
	if err != nil {
		return nil, err
	}
	defer self.Close()

	parentSock, childSock, err := socketPair("init-parent", "init-child")
	if err != nil {
		return nil, err
	}
	defer parentSock.Close()
	defer childSock.Close()

	fifo, err := os.OpenFile(r.Store.FifoPath(o.ID), os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open exec fifo: %w", err)
	}
	defer fifo.Close()

	files := newChildFiles(o.PreserveFDs)
	defer files.close()
	sockFD := files.add(childSock)
	initCfg.FifoFD = files.add(fifo)
	initCfg.ConsoleFD, initCfg.ListenerFD = -1, -1

	if s.Process != nil && s.Process.Terminal {
		conn := o.consoleConn
		if conn == nil {
			conn, err = console.DialSocket(o.ConsoleSocket)
			if err != nil {
				return nil, fmt.Errorf("--console-socket %s: %w", o.ConsoleSocket, err)
			}
			defer conn.Close()
		}
		initCfg.ConsoleFD = files.add(conn)
	}
	if sc := s.Linux.Seccomp; sc != nil && sc.ListenerPath != "" {
		if initCfg.ListenerFD, err = files.addSeccompListener(sc.ListenerPath); err != nil {
			return nil, err
		}
	}

	stdio := func(f, def *os.File) *os.File {
		if f != nil {
			return f
		}
		return def
	}
	cmd := &exec.Cmd{
		Path:       selfPath(self),
		Args:       []string{"gantry-oci", "init"},
		Env:        initEnv(sockFD),
		Stdin:      stdio(o.Stdin, os.Stdin),
		Stdout:     stdio(o.Stdout, os.Stdout),
		Stderr:     stdio(o.Stderr, os.Stderr),
		ExtraFiles: files.files,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start container bootstrap: %w", err)
	}
	childSock.Close()
	cr.pids = append(cr.pids, cmd.Process.Pid)
	tracef("create: bootstrap started")
	waited := false
	defer func() {
		if !waited && boot.Fork {
			cmd.Process.Kill()
			cmd.Wait()
		}
	}()

	boot.Keep = files.keep()
	rd := bufio.NewReader(parentSock)
	pid, err := nsexec.Drive(parentSock, rd, boot, func(pid int) error {
		return writeIDMaps(pid, s.Linux, r.Rootless)
	})
	if err != nil {
		return nil, err
	}
	cr.pids = append(cr.pids, pid)
	tracef("create: bootstrap done")
	initCfg.Pid = pid
	startTime, _, err := state.StartTime(pid)
	if err != nil {
		return nil, fmt.Errorf("container init exited early: %w", err)
	}

	if err := send(parentSock, message{Type: msgConfig, Config: initCfg}); err != nil {
		return nil, fmt.Errorf("send config to container init: %w", err)
	}
	// Reap the bootstrap only now: the init is already reading its config.
	if boot.Fork {
		waited = true
		if err := cmd.Wait(); err != nil {
			return nil, fmt.Errorf("container bootstrap: %w", err)
		}
	}
	// The state is encoded and written beside state.json now, while the
	// init's Go runtime starts (the write may wait for the disk); it
	// becomes the state once the init is ready.
	c := &state.Container{
		ID:           o.ID,
		Pid:          pid,
		PidStartTime: startTime,
		Bundle:       bundle,
		Rootfs:       rootfs,
		Created:      time.Now().UTC(),
		Owner:        ownerName(),
		Annotations:  s.Annotations,
		Spec:         s,
		SeccompKey:   seccompKey,
	}
	if cr.cg != nil {
		c.CgroupPaths = cr.cg.Paths()
	}
	// What json.Marshal(c) returns, without its second pass over the bytes
	// (as state.Store.Save).
	stateJSON, err := c.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("encode state: %w", err)
	}
	if err := r.Store.Stage(o.ID, stateJSON); err != nil {
		return nil, err
	}
	if err := r.Store.StageView(o.ID, encodeExecView(state.ExecViewOf(c))); err != nil {
		return nil, err
	}
	tracef("create: state encoded and staged")
	if _, err := expect(rd, msgHooks); err != nil {
		return nil, err
	}
	tracef("create: init mounted rootfs")
	cr.hooksBegun = true
	if s.Hooks != nil {
		st := hookState(o.ID, s, bundle, pid, state.Created)
		if err := hook.RunAll(ctx, "prestart", s.Hooks.Prestart, st); err != nil {
			return nil, err
		}
		if err := hook.RunAll(ctx, "createRuntime", s.Hooks.CreateRuntime, st); err != nil {
			return nil, err
		}
	}
	if err := send(parentSock, message{Type: msgHooksDone}); err != nil {
		return nil, fmt.Errorf("container init: %w", err)
	}
	if _, err := expect(rd, msgReady); err != nil {
		return nil, err
	}
	tracef("create: init ready")
	cg := cr.cg
	if res := deviceResources(s.Linux.Resources, s.Linux.Devices); cg != nil && res != nil {
		if err := cg.Set(res); err != nil {
			return nil, fmt.Errorf("linux.resources: %w", err)
		}
	}

	tracef("create: resources set")
	if err := r.Store.Commit(o.ID); err != nil {
		return nil, err
	}
	tracef("create: state committed")
	if o.PidFile != "" {
		if err := writePidFile(o.PidFile, pid); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// planNamespaces turns linux.namespaces into the bootstrap message.
func planNamespaces(s *specs.Spec) (*nsexec.Bootstrap, *InitConfig, error) {
	b := &nsexec.Bootstrap{}
	cfg := &InitConfig{}
	for i, ns := range s.Linux.Namespaces {
		t, ok := nsexec.NamespaceTypes[string(ns.Type)]
		if !ok {
			return nil, nil, fmt.Errorf("config.json: linux.namespaces[%d].type: unknown namespace type %q: %w", i, ns.Type, errdefs.ErrInvalidArgument)
		}
		if ns.Path != "" {
			b.Joins = append(b.Joins, nsexec.Join{Type: t.Name, Path: ns.Path})
		} else {
			b.CloneFlags |= t.Flag
		}
		switch ns.Type {
		case specs.PIDNamespace:
			b.Fork = true
		case specs.MountNamespace:
			cfg.NewMountNS = ns.Path == ""
		case specs.UserNamespace:
			cfg.NewUserNS = ns.Path == ""
		case specs.CgroupNamespace:
			cfg.NewCgroupNS = ns.Path == ""
		case specs.UTSNamespace:
			cfg.NewUTSNS = ns.Path == ""
		case specs.TimeNamespace:
			if ns.Path == "" {
				for clock, off := range s.Linux.TimeOffsets {
					b.TimeOffsets = append(b.TimeOffsets, fmt.Sprintf("%s %d %d", clock, off.Secs, off.Nanosecs))
				}
			}
		}
	}
	return b, cfg, nil
}

func writeIDMaps(pid int, l *specs.Linux, rootless bool) error {
	render := func(m []specs.LinuxIDMapping) string {
		var sb strings.Builder
		for _, e := range m {
			fmt.Fprintf(&sb, "%d %d %d\n", e.ContainerID, e.HostID, e.Size)
		}
		return sb.String()
	}
	dir := "/proc/" + strconv.Itoa(pid)
	if rootless {
		if err := os.WriteFile(dir+"/setgroups", []byte("deny"), 0); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("write setgroups: %w", err)
		}
	}
	if len(l.UIDMappings) > 0 {
		if err := os.WriteFile(dir+"/uid_map", []byte(render(l.UIDMappings)), 0); err != nil {
			return fmt.Errorf("linux.uidMappings: write uid_map: %w", err)
		}
	}
	if len(l.GIDMappings) > 0 {
		if err := os.WriteFile(dir+"/gid_map", []byte(render(l.GIDMappings)), 0); err != nil {
			return fmt.Errorf("linux.gidMappings: write gid_map: %w", err)
		}
	}
	return nil
}

func writePidFile(path string, pid int) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("--pid-file %s: %w", path, err)
	}
	tmp := filepath.Join(filepath.Dir(abs), "."+filepath.Base(abs)+".tmp")
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(pid)), 0o644); err != nil {
		return fmt.Errorf("--pid-file %s: %w", path, err)
	}
	if err := os.Rename(tmp, abs); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("--pid-file %s: %w", path, err)
	}
	return nil
}

func ownerName() string {
	uid := os.Geteuid()
	if uid == 0 {
		return "root"
	}
	return strconv.Itoa(uid)
}

// setupCgroup makes the container's cgroup directories (mkdir only: the
// bootstrap enters them itself) and names them in boot.
func (r *Runtime) setupCgroup(cr *creation, o CreateOptions, s *specs.Spec, boot *nsexec.Bootstrap) error {
	cg, err := cgroup.New(s.Linux.CgroupsPath, o.ID)
	if err != nil {
		if !r.Rootless {
			return fmt.Errorf("linux.cgroupsPath: %w", err)
		}
		cg = nil
	}
	cr.cg = cg
	if cg != nil {
		cr.cgApplied = true
		if err := cg.Apply(0); err != nil {
			if !r.Rootless || s.Linux.CgroupsPath != "" || !permissionError(err) {
				return fmt.Errorf("linux.cgroupsPath %q: %w", s.Linux.CgroupsPath, err)
			}
			// As runc: a rootless container without linux.cgroupsPath
			// runs without a cgroup when it may not make one.
			r.Log.Debug("rootless: no cgroup", "id", o.ID, "error", err)
			if derr := cg.Destroy(); derr != nil {
				r.Log.Warn("remove cgroup", "id", o.ID, "error", derr)
			}
			cr.cg, cr.cgApplied = nil, false
		}
	}
	if cr.cg == nil {
		// Limits without a cgroup would be silently dropped: refuse
		// them, as runc does ("cannot set ... limit: container could
		// not join or create cgroup"). Device rules are let go, as in
		// runc's rootless mode: a user namespace cannot open devices
		// it was not given anyway.
		if field := limitField(s.Linux.Resources); field != "" {
			return fmt.Errorf("linux.resources.%s: rootless container could not create a cgroup to set it in: %w", field, errdefs.ErrFailedPrecondition)
		}
		return nil
	}
	boot.CgroupV1, boot.CgroupV2 = cgroupDirs(cr.cg.Paths())
	tracef("create: cgroup directories made")
	return nil
}

// permissionError reports whether err is the kernel refusing an
// unprivileged cgroup operation.
func permissionError(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EROFS)
}

// limitField names the first field of r that needs a cgroup to take
// effect (anything but device rules), or "" when there is none.
func limitField(r *specs.LinuxResources) string {
	if r == nil {
		return ""
	}
	switch {
	case r.Memory != nil:
		return "memory"
	case r.CPU != nil:
		return "cpu"
	case r.Pids != nil:
		return "pids"
	case r.BlockIO != nil:
		return "blockIO"
	case len(r.HugepageLimits) > 0:
		return "hugepageLimits"
	case r.Network != nil:
		return "network"
	case len(r.Rdma) > 0:
		return "rdma"
	case len(r.Unified) > 0:
		return "unified"
	}
	return ""
}

// hookState is the state a hook reads on stdin.
func hookState(id string, s *specs.Spec, bundle string, pid int, status string) *specs.State {
	return &specs.State{
		Version:     specs.Version,
		ID:          id,
		Status:      specs.ContainerState(status),
		Pid:         pid,
		Bundle:      bundle,
		Annotations: s.Annotations,
	}
}

// waitGone waits until pid is gone (or a zombie), up to timeout.
func waitGone(pid int, startTime uint64, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for d := time.Millisecond; ; d *= 2 {
		if !state.ProcessAlive(pid, startTime) {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		if d > 50*time.Millisecond {
			d = 50 * time.Millisecond
		}
		time.Sleep(d)
	}
}

// killCgroup sends SIGKILL to every process of the cgroup.
func killCgroup(cg cgroup.Manager) {
	for i := 0; i < 10; i++ {
		pids, err := cg.Pids()
		if err != nil || len(pids) == 0 {
			return
		}
		for _, p := range pids {
			if p == os.Getpid() {
				// never a container's cgroup: refuse to kill ourselves
				// and whatever else shares it
				return
			}
		}
		for _, p := range pids {
			unix.Kill(p, unix.SIGKILL)
		}
		time.Sleep(time.Duration(i+1) * 5 * time.Millisecond)
	}
}

func initEnv(sockFD int) []string {
	// The init is short-lived and single-purpose: one P and no GC. And no
	// rseq registration by glibc: the Go runtime may start a thread after
	// the container's seccomp filter is installed, and a profile that does
	// not allow rseq(2) makes glibc abort the thread start ("Fatal glibc
	// error: rseq registration failed").
	env := []string{nsexec.EnvInitFD + "=" + strconv.Itoa(sockFD), "GOMAXPROCS=1", "GOGC=off", "GLIBC_TUNABLES=glibc.pthread.rseq=0"}
	if traceOn {
		env = append(env, "GANTRY_OCI_TRACE=1")
	}
	return env
}

// unsupported refuses the parts of runtime-spec v1.3.0 that gantry-oci does
// not implement yet, rather than run a container without them.
func unsupported(l *specs.Linux) error {
	switch {
	case len(l.NetDevices) > 0:
		return fmt.Errorf("config.json: linux.netDevices: moving host network devices into the container: %w", errdefs.ErrNotImplemented)
	case l.MemoryPolicy != nil:
		return fmt.Errorf("config.json: linux.memoryPolicy: NUMA memory policies: %w", errdefs.ErrNotImplemented)
	case l.IntelRdt != nil:
		return fmt.Errorf("config.json: linux.intelRdt: Intel RDT (resctrl): %w", errdefs.ErrNotImplemented)
	}
	return nil
}

// cgroupDirs splits a cgroup manager's paths into the v1 directories and
// the v2 one (key ""), sorted, for the bootstrap to enter.
func cgroupDirs(paths map[string]string) (v1 []string, v2 string) {
	for key, dir := range paths {
		if key == "" {
			v2 = dir
			continue
		}
		v1 = append(v1, dir)
	}
	sort.Strings(v1)
	return v1, v2
}

// compiledSeccomp returns the compiled filter of sc from the cache under
// root (.seccomp/<key>, written atomically, readable by root only), or
// compiles it and stores it. Compiling a docker-like default profile for
// three architectures takes 20-25 ms; reading it back takes microseconds.
// The cache is best effort: a store that fails is not an error. It also
// returns the key, which exec finds the program by (cachedSeccomp).
func compiledSeccomp(root string, sc *specs.LinuxSeccomp) ([]byte, string, error) {
	key, err := seccomp.CacheKey(sc)
	if err != nil {
		return nil, "", fmt.Errorf("linux.seccomp: %w", err)
	}
	if data := cachedSeccomp(root, key); data != nil {
		return data, key, nil
	}
	dir := filepath.Join(root, ".seccomp")
	path := filepath.Join(dir, key)
	prog, err := seccomp.Prepare(sc)
	if err != nil {
		return nil, "", fmt.Errorf("linux.seccomp: %w", err)
	}
	data, err := prog.MarshalBinary()
	if err != nil {
		return nil, "", fmt.Errorf("linux.seccomp: %w", err)
	}
	if os.MkdirAll(dir, 0o700) == nil {
		tmp, err := os.CreateTemp(dir, ".tmp-")
		if err == nil {
			sum := sha256.Sum256(data)
			_, werr := tmp.Write(append(slices.Clip(data), sum[:]...))
			if cerr := tmp.Close(); werr == nil && cerr == nil {
				os.Rename(tmp.Name(), path)
			}
			os.Remove(tmp.Name())
		}
	}
	return data, key, nil
}

// cachedSeccomp returns the compiled filter stored under key, or nil. The
// file ends with the sha256 of the program: a file damaged by a crash (the
// cache is not fsynced) is recompiled, never installed.
func cachedSeccomp(root, key string) []byte {
	if key == "" || strings.ContainsAny(key, "/.") {
		return nil
	}
	file, err := os.ReadFile(filepath.Join(root, ".seccomp", key))
	if err != nil || len(file) < sha256.Size {
		return nil
	}
	data, sum := file[:len(file)-sha256.Size], file[len(file)-sha256.Size:]
	if want := sha256.Sum256(data); !bytes.Equal(sum, want[:]) {
		return nil
	}
	var p seccomp.Program
	if p.UnmarshalBinary(data) != nil {
		return nil
	}
	return data
}
