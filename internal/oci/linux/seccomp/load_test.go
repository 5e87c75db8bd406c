package seccomp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// The Load tests cannot install a filter in the test process itself (it
// would stay for the rest of the run), so each re-executes the test binary
// with scenarioEnv naming a scenario. TestMain runs it instead of the tests:
// the child loads a profile, exercises syscalls and exits 0 on success or
// prints what went wrong and exits with childFailed.
const (
	scenarioEnv = "GANTRY_SECCOMP_TEST_SCENARIO"
	dirEnv      = "GANTRY_SECCOMP_TEST_DIR"
	listenerEnv = "GANTRY_SECCOMP_TEST_LISTENER"
	flagEnv     = "GANTRY_SECCOMP_TEST_FLAG"
	childFailed = 3
	// customErrno is an errno none of the exercised syscalls returns on
	// its own, so seeing it proves the filter answered.
	customErrno = unix.EXDEV
	// loadedMarker is printed by a child once its filter is loaded.
	loadedMarker = "seccomp-filter-loaded"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(scenarioEnv); name != "" {
		os.Exit(runScenario(name))
	}
	os.Exit(m.Run())
}

var scenarios = map[string]func() error{
	"errno":          scenarioErrno,
	"allowlist":      scenarioAllowList,
	"args":           scenarioArgs,
	"kill-process":   scenarioKillProcess,
	"notify":         scenarioNotify,
	"flags-and-arch": scenarioFlagsAndArch,
}

func runScenario(name string) int {
	f, ok := scenarios[name]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown scenario %q\n", name)
		return childFailed
	}
	if err := f(); err != nil {
		fmt.Fprintf(os.Stderr, "scenario %s: %v\n", name, err)
		return childFailed
	}
	return 0
}

// childLoad prepares the child (no core dumps; no_new_privs when not root,
// since loading without it needs CAP_SYS_ADMIN) and loads s. The thread
// stays locked: no_new_privs is per thread and must be set on the thread
// that loads the filter. As root it also checks that Load left
// no_new_privs alone.
func childLoad(s *specs.LinuxSeccomp) (int, error) {
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return -1, fmt.Errorf("disable core dumps: %w", err)
	}
	root := os.Geteuid() == 0
	if !root {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return -1, fmt.Errorf("set no_new_privs: %w", err)
		}
	}
	fd, err := Load(s)
	if err != nil {
		return -1, fmt.Errorf("Load: %w", err)
	}
	if root {
		nnp, err := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
		if err != nil {
			return -1, fmt.Errorf("get no_new_privs: %w", err)
		}
		if nnp != 0 {
			return -1, errors.New("Load set no_new_privs")
		}
	}
	fmt.Fprintln(os.Stderr, loadedMarker)
	return fd, nil
}

// wantErrno checks that err is the errno want.
func wantErrno(what string, err error, want unix.Errno) error {
	if !errors.Is(err, want) {
		return fmt.Errorf("%s: got error %v, want %v", what, err, want)
	}
	return nil
}

// everyThreadFiltered checks that all threads of the process run under a
// seccomp filter (TSYNC).
func everyThreadFiltered() error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, task := range tasks {
		status, err := os.ReadFile(filepath.Join("/proc/self/task", task.Name(), "status"))
		if err != nil {
			return err
		}
		if !bytes.Contains(status, []byte("\nSeccomp:\t2\n")) {
			return fmt.Errorf("thread %s is not in seccomp filter mode", task.Name())
		}
	}
	if len(tasks) < 2 {
		return fmt.Errorf("only %d thread(s): nothing shows TSYNC", len(tasks))
	}
	return nil
}

func scenarioErrno() error {
	dir := os.Getenv(dirEnv)
	_, err := childLoad(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno},
			{Names: []string{"symlink", "symlinkat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(customErrno))},
		},
	})
	if err != nil {
		return err
	}
	if err := wantErrno("mkdir", unix.Mkdir(filepath.Join(dir, "d"), 0o755), unix.EPERM); err != nil {
		return err
	}
	if _, err := os.Lstat(filepath.Join(dir, "d")); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("mkdir was denied but the directory exists (%v)", err)
	}
	if err := wantErrno("symlink", unix.Symlink("target", filepath.Join(dir, "l")), customErrno); err != nil {
		return err
	}
	// Not in the profile: still works.
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		return fmt.Errorf("unfiltered write: %w", err)
	}
	return everyThreadFiltered()
}

// goRuntimeSyscalls is what a Go program (this test binary) needs after the
// filter is loaded: memory, threads, signals, scheduling, exit and the
// writes and reads of the scenario itself.
var goRuntimeSyscalls = []string{
	"arch_prctl", "brk", "clock_gettime", "clock_nanosleep", "clone", "clone3", "close",
	"epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_wait", "exit", "exit_group",
	"fcntl", "fstat", "futex", "getdents64", "getpid", "getrandom", "gettid", "madvise",
	"mmap", "mprotect", "munmap", "nanosleep", "newfstatat", "openat", "pipe2", "read",
	"rseq", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sched_getaffinity",
	"sched_yield", "set_robust_list", "sigaltstack", "tgkill", "write",
	"prctl", "getrlimit", "prlimit64",
}

func scenarioAllowList() error {
	_, err := childLoad(&specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uptr(uint(customErrno)),
		Syscalls: []specs.LinuxSyscall{
			{Names: goRuntimeSyscalls, Action: specs.ActAllow},
		},
	})
	if err != nil {
		return err
	}
	if _, _, e := unix.RawSyscall(unix.SYS_GETPPID, 0, 0, 0); e != customErrno {
		return fmt.Errorf("getppid (not allowed): errno %v, want %v", e, customErrno)
	}
	var u unix.Utsname
	if err := wantErrno("uname (not allowed)", unix.Uname(&u), customErrno); err != nil {
		return err
	}
	if pid, _, e := unix.RawSyscall(unix.SYS_GETPID, 0, 0, 0); e != 0 || int(pid) != os.Getpid() {
		return fmt.Errorf("getpid (allowed) = %d, errno %v; want %d", pid, e, os.Getpid())
	}
	return nil
}

func scenarioArgs() error {
	const (
		perLinux32      = 0x0008
		readImpliesExec = 0x0400000
		queryPersona    = 0xffffffff
		who             = 4242
	)
	_, err := childLoad(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{
			// Two conditions on the same argument: one rule each, so
			// either value is denied.
			{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(customErrno)), Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: perLinux32, Op: specs.OpEqualTo},
				{Index: 0, Value: readImpliesExec, Op: specs.OpEqualTo},
			}},
			// Conditions on different arguments are ANDed.
			{Names: []string{"getpriority"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(customErrno)), Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: unix.PRIO_PROCESS, Op: specs.OpEqualTo},
				{Index: 1, Value: who, Op: specs.OpEqualTo},
			}},
			// Masked equality: umask with any of the bits 0o7000 set.
			{Names: []string{"umask"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(customErrno)), Args: []specs.LinuxSeccompArg{
				{Index: 0, Value: 0o7000, ValueTwo: 0o1000, Op: specs.OpMaskedEqual},
			}},
		},
	})
	if err != nil {
		return err
	}
	sys := func(nr, a0, a1 uintptr) unix.Errno {
		_, _, e := unix.RawSyscall(nr, a0, a1, 0)
		return e
	}
	for _, c := range []struct {
		what   string
		nr     uintptr
		a0, a1 uintptr
		denied bool
	}{
		{"personality(PER_LINUX32)", unix.SYS_PERSONALITY, perLinux32, 0, true},
		{"personality(READ_IMPLIES_EXEC)", unix.SYS_PERSONALITY, readImpliesExec, 0, true},
		{"personality(query)", unix.SYS_PERSONALITY, queryPersona, 0, false},
		{"getpriority(PRIO_PROCESS, who)", unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, who, true},
		{"getpriority(PRIO_PROCESS, 0)", unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, 0, false},
		{"getpriority(PRIO_PGRP, who)", unix.SYS_GETPRIORITY, unix.PRIO_PGRP, who, false},
		{"getpriority(PRIO_PROCESS, who+1)", unix.SYS_GETPRIORITY, unix.PRIO_PROCESS, who + 1, false},
		{"umask(0o1022)", unix.SYS_UMASK, 0o1022, 0, true},
		{"umask(0o022)", unix.SYS_UMASK, 0o022, 0, false},
	} {
		e := sys(c.nr, c.a0, c.a1)
		if c.denied && e != customErrno {
			return fmt.Errorf("%s: errno %v, want %v", c.what, e, customErrno)
		}
		if !c.denied && e == customErrno {
			return fmt.Errorf("%s: denied, want it to pass the filter", c.what)
		}
	}
	return nil
}

func scenarioKillProcess() error {
	_, err := childLoad(&specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"uname"}, Action: specs.ActKillProcess}},
	})
	if err != nil {
		return err
	}
	var u unix.Utsname
	err = unix.Uname(&u)
	return fmt.Errorf("uname returned (%v); the process should have been killed", err)
}

func scenarioNotify() error {
	dir, listener := os.Getenv(dirEnv), os.Getenv(listenerEnv)
	s := &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     listener,
		ListenerMetadata: "test-metadata",
		Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	if f := os.Getenv(flagEnv); f != "" {
		s.Flags = append(s.Flags, specs.LinuxSeccompFlag(f))
	}
	fd, err := childLoad(s)
	if err != nil {
		return err
	}
	if fd < 0 {
		return fmt.Errorf("Load returned notify fd %d", fd)
	}
	state := &specs.ContainerProcessState{
		Pid:      os.Getpid(),
		Metadata: "test-metadata",
		State:    specs.State{ID: "notify-test", Status: specs.StateCreating, Pid: os.Getpid()},
	}
	if err := SendNotifyFd(listener, state, fd); err != nil {
		return err
	}
	unix.Close(fd)
	// The agent (the test) answers "success" without running mkdir.
	target := filepath.Join(dir, "d")
	if err := unix.Mkdir(target, 0o755); err != nil {
		return fmt.Errorf("mkdir under notify: %w (want the agent's success)", err)
	}
	if _, err := os.Lstat(target); !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("agent answered without running mkdir, yet %s exists (%v)", target, err)
	}
	return nil
}

func scenarioFlagsAndArch() error {
	s := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchAARCH64, specs.ArchARM},
		Flags:         []specs.LinuxSeccompFlag{flagTsync},
		Syscalls: []specs.LinuxSyscall{
			// Unknown names, names of other architectures and a rule
			// repeating the default action must not stop the load.
			{Names: []string{"no_such_syscall", "socketcall", "arm_fadvise64_64", "getpid"}, Action: specs.ActAllow},
			{Names: []string{"no_such_syscall", "socketcall", "mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: uptr(uint(customErrno))},
		},
	}
	for _, f := range SupportedFlags() {
		if f == string(specs.LinuxSeccompFlagLog) || f == string(specs.LinuxSeccompFlagSpecAllow) || f == string(specs.LinuxSeccompFlagWaitKillableRecv) {
			s.Flags = append(s.Flags, specs.LinuxSeccompFlag(f))
		}
	}
	if _, err := childLoad(s); err != nil {
		return err
	}
	if err := wantErrno("mkdir", unix.Mkdir(filepath.Join(os.Getenv(dirEnv), "d"), 0o755), customErrno); err != nil {
		return err
	}
	return everyThreadFiltered()
}

type childResult struct {
	state  *os.ProcessState
	output string
}

// startChild starts the test binary on scenario; its output is collected
// into the result that wait returns.
func startChild(t *testing.T, scenario string, env ...string) (*exec.Cmd, func() childResult) {
	t.Helper()
	if !Enabled() {
		t.Skip("kernel without seccomp filter support")
	}
	var out bytes.Buffer
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), append(env, scenarioEnv+"="+scenario)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	return cmd, func() childResult {
		_ = cmd.Wait() // the exit status is judged by the caller
		return childResult{cmd.ProcessState, out.String()}
	}
}

func runChild(t *testing.T, scenario string, env ...string) childResult {
	t.Helper()
	_, wait := startChild(t, scenario, env...)
	return wait()
}

func requireSuccess(t *testing.T, r childResult) {
	t.Helper()
	if !r.state.Success() {
		t.Fatalf("child %v; output:\n%s", r.state, r.output)
	}
	if !strings.Contains(r.output, loadedMarker) {
		t.Fatalf("child succeeded without loading a filter; output:\n%s", r.output)
	}
}

func TestLoadErrno(t *testing.T) {
	requireSuccess(t, runChild(t, "errno", dirEnv+"="+t.TempDir()))
}

func TestLoadDefaultErrnoWithAllowList(t *testing.T) {
	requireSuccess(t, runChild(t, "allowlist"))
}

func TestLoadArgumentConditions(t *testing.T) {
	requireSuccess(t, runChild(t, "args"))
}

func TestLoadFlagsAndArchitectures(t *testing.T) {
	requireSuccess(t, runChild(t, "flags-and-arch", dirEnv+"="+t.TempDir()))
}

func TestLoadKillProcess(t *testing.T) {
	r := runChild(t, "kill-process")
	if !strings.Contains(r.output, loadedMarker) {
		t.Fatalf("child did not load its filter: %v; output:\n%s", r.state, r.output)
	}
	ws, ok := r.state.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGSYS {
		t.Fatalf("child ended with %v, want killed by SIGSYS; output:\n%s", r.state, r.output)
	}
}

func TestLoadNotify(t *testing.T) {
	t.Run("plain", func(t *testing.T) { testLoadNotify(t, "") })
	t.Run("wait-killable-recv", func(t *testing.T) {
		if !slices.Contains(SupportedFlags(), string(specs.LinuxSeccompFlagWaitKillableRecv)) {
			t.Skip("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV not supported here")
		}
		testLoadNotify(t, specs.LinuxSeccompFlagWaitKillableRecv)
	})
}

// testLoadNotify plays the seccomp agent for a child whose mkdir is sent
// to user space, with flag added to the profile when not empty.
func testLoadNotify(t *testing.T, flag specs.LinuxSeccompFlag) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	cmd, wait := startChild(t, "notify", dirEnv+"="+dir, listenerEnv+"="+sock, flagEnv+"="+string(flag))
	done := make(chan childResult, 1)
	go func() {
		r := wait()
		l.Close() // unblocks Accept if the child died before connecting
		done <- r
	}()
	fail := func(format string, args ...any) {
		t.Helper()
		_ = cmd.Process.Kill()
		r := <-done
		t.Fatalf("%s; child %v, output:\n%s", fmt.Sprintf(format, args...), r.state, r.output)
	}

	conn, err := l.AcceptUnix()
	if err != nil {
		fail("accept: %v", err)
	}
	defer conn.Close()
	state, fds, err := readState(conn)
	if err != nil {
		fail("read state: %v", err)
	}
	t.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	if len(fds) != 1 {
		fail("got %d fds, want 1", len(fds))
	}
	if len(state.Fds) != 1 || state.Fds[0] != specs.SeccompFdName {
		fail("state.fds = %q, want [%q]", state.Fds, specs.SeccompFdName)
	}
	if state.Metadata != "test-metadata" || state.Pid != cmd.Process.Pid || state.Version != specs.Version {
		fail("state = %+v; want metadata %q, pid %d, version %s", state, "test-metadata", cmd.Process.Pid, specs.Version)
	}

	// Wait for the child's mkdir; POLLHUP alone means it exited first.
	notifyFd := fds[0]
	pfd := []unix.PollFd{{Fd: int32(notifyFd), Events: unix.POLLIN}}
	for {
		_, err := unix.Poll(pfd, -1)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			fail("poll notify fd: %v", err)
		}
		break
	}
	if pfd[0].Revents&unix.POLLIN == 0 {
		fail("notify fd revents %#x, no notification", pfd[0].Revents)
	}
	req, err := libseccomp.NotifReceive(libseccomp.ScmpFd(notifyFd))
	if err != nil {
		fail("receive notification: %v", err)
	}
	if int(req.Pid) != cmd.Process.Pid {
		fail("notification from pid %d, want %d", req.Pid, cmd.Process.Pid)
	}
	name, _ := req.Data.Syscall.GetName()
	if name != "mkdir" && name != "mkdirat" {
		fail("notification for syscall %q, want mkdir or mkdirat", name)
	}
	if err := libseccomp.NotifRespond(libseccomp.ScmpFd(notifyFd), &libseccomp.ScmpNotifResp{ID: req.ID}); err != nil {
		fail("respond: %v", err)
	}
	r := <-done
	requireSuccess(t, r)
}

// readState reads one container process state message, with the fds sent
// alongside it, until the sender closes the connection.
func readState(conn *net.UnixConn) (*specs.ContainerProcessState, []int, error) {
	var data []byte
	var fds []int
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
		data = append(data, buf[:n]...)
		if oobn > 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr != nil {
				return nil, fds, perr
			}
			for _, m := range msgs {
				got, perr := unix.ParseUnixRights(&m)
				if perr != nil {
					return nil, fds, perr
				}
				fds = append(fds, got...)
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && n == 0 && oobn == 0) {
			break
		}
		if err != nil {
			return nil, fds, err
		}
	}
	var st specs.ContainerProcessState
	if err := json.Unmarshal(data, &st); err != nil {
		return nil, fds, fmt.Errorf("decode %q: %w", data, err)
	}
	return &st, fds, nil
}
