package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/test/bundle"
)

// rootlessUID is the unprivileged host uid (and gid) the rootless tests run
// the runtime as: in no host user database, and different per test process
// so that the process check cannot see another suite's processes.
var rootlessUID = 300000 + os.Getpid()%50000

// rootlessEnv is what a rootless test runs the runtime in: its --root,
// HOME and XDG_RUNTIME_DIR, all owned by rootlessUID.
type rootlessEnv struct {
	root, home, xdg string
}

// newRootlessEnv makes the user's directories and skips t when the suite
// cannot run.
func newRootlessEnv(t *testing.T) *rootlessEnv {
	t.Helper()
	env(t) // skips without root or a runtime
	base := t.TempDir()
	e := &rootlessEnv{
		root: filepath.Join(base, "root"),
		home: filepath.Join(base, "home"),
		xdg:  filepath.Join(base, "xdg"),
	}
	for _, d := range []string{e.root, e.home, e.xdg} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
		chownUser(t, d)
	}
	openPath(t, base)
	// A runtime built by the suite is in a 0700 temp dir.
	openPath(t, filepath.Dir(runtimePath))
	return e
}

// openPath makes dir and its parents below the temp dir searchable by
// everyone (t.TempDir makes 0700 directories); a dir elsewhere is left as
// it is.
func openPath(t *testing.T, dir string) {
	t.Helper()
	tmp := filepath.Clean(os.TempDir())
	if !strings.HasPrefix(dir, tmp+"/") {
		return
	}
	for d := dir; d != tmp && d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, st.Mode().Perm()|0o011); err != nil {
			t.Fatal(err)
		}
	}
}

func chownUser(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, rootlessUID, rootlessUID); err != nil {
		t.Fatal(err)
	}
}

// run runs the runtime as rootlessUID in dir with --root of e (unless
// noRoot) and args, and returns its stdout, stderr and exit code.
func (e *rootlessEnv) run(t *testing.T, dir string, noRoot bool, args ...string) (string, string, int) {
	t.Helper()
	out := t.TempDir()
	outF, err := os.Create(filepath.Join(out, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(filepath.Join(out, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()
	full := args
	if !noRoot {
		full = append([]string{"--root", e.root}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, runtimePath, full...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + e.home, "XDG_RUNTIME_DIR=" + e.xdg}
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: &syscall.Credential{Uid: uint32(rootlessUID), Gid: uint32(rootlessUID), Groups: []uint32{}},
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runErr := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exitErr):
		code = exitErr.ExitCode()
	default:
		t.Fatalf("run %s as uid %d: %v", runtimePath, rootlessUID, runErr)
	}
	if ctx.Err() != nil {
		t.Errorf("%s %s: killed after %v", runtimePath, strings.Join(full, " "), commandTimeout)
		code = -1
	}
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	t.Logf("uid %d: %s %s: exit %d; stderr: %s", rootlessUID, filepath.Base(runtimePath), strings.Join(full, " "), code, strings.TrimSpace(string(stderr)))
	return string(stdout), string(stderr), code
}

// rootlessBundle makes a bundle owned by rootlessUID whose config.json is
// `spec --rootless` as that user, with process.args set to args and edit
// applied. The container's id is returned with it; its clean-up (delete
// --force as the user, then the leftover checks) is registered on t.
func (e *rootlessEnv) bundle(t *testing.T, edit func(*specs.Spec), args ...string) (dir, id string) {
	t.Helper()
	b := bundle.New(t)
	if err := os.Remove(b.ConfigPath()); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("chown", "-R", fmt.Sprintf("%d:%d", rootlessUID, rootlessUID), b.Dir).CombinedOutput(); err != nil {
		t.Fatalf("chown bundle: %v: %s", err, out)
	}
	openPath(t, b.Dir)
	if _, stderr, code := e.run(t, b.Dir, true, "spec", "--rootless"); code != 0 {
		t.Fatalf("spec --rootless: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(b.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("decode spec --rootless output: %v", err)
	}
	// What `spec --rootless` must have made, as `runc spec --rootless`.
	uidMap := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(rootlessUID), Size: 1}}
	if !slices.Equal(s.Linux.UIDMappings, uidMap) || !slices.Equal(s.Linux.GIDMappings, uidMap) {
		t.Fatalf("spec --rootless: uid/gid mappings %v %v, want %v", s.Linux.UIDMappings, s.Linux.GIDMappings, uidMap)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace {
			t.Errorf("spec --rootless: asks for a network namespace")
		}
	}
	if s.Linux.Resources != nil || s.Linux.CgroupsPath != "" {
		t.Errorf("spec --rootless: resources %+v, cgroupsPath %q: want none", s.Linux.Resources, s.Linux.CgroupsPath)
	}
	s.Process.Terminal = false
	s.Process.Args = args
	if edit != nil {
		edit(&s)
	}
	if err := bundle.WriteSpec(b.ConfigPath(), &s); err != nil {
		t.Fatal(err)
	}
	chownUser(t, b.ConfigPath())
	t.Cleanup(func() {
		e.run(t, "/", false, "delete", "--force", b.ID)
		e.checkLeftovers(t, b.ID)
	})
	return b.Dir, b.ID
}

// checkLeftovers fails t for a state entry, a cgroup or a process of the
// user left behind by container id, killing what it finds.
func (e *rootlessEnv) checkLeftovers(t *testing.T, id string) {
	t.Helper()
	if _, err := os.Lstat(filepath.Join(e.root, id)); err == nil {
		t.Errorf("container %s: state entry %s left", id, filepath.Join(e.root, id))
	}
	if !safeID(id) {
		return
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", id))
	for _, d := range dirs {
		t.Errorf("container %s: cgroup %s left (a rootless run may not make one)", id, d)
		os.Remove(d)
	}
	for _, pid := range userPids(rootlessUID) {
		cmdline, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		t.Errorf("container %s: process %d (%s) of uid %d left; killing it", id, pid, strings.ReplaceAll(string(cmdline), "\x00", " "), rootlessUID)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// userPids returns the live (not zombie) processes whose real uid is uid.
func userPids(uid int) []int {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/status")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		var ruid, st string
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 {
				switch f[0] {
				case "Uid:":
					ruid = f[1]
				case "State:":
					st = f[1]
				}
			}
		}
		if ruid == strconv.Itoa(uid) && st != "Z" {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestRootless runs containers as an unprivileged host user with a config
// from `spec --rootless`, as `runc --rootless` does: the container is root
// in a user namespace mapping only that user, runs without a cgroup, and
// state, list, kill and delete work on it as the same user.
func TestRootless(t *testing.T) {
	e := newRootlessEnv(t)

	t.Run("foreground", func(t *testing.T) {
		dir, id := e.bundle(t, nil, "/bin/sh", "-c", "id -u; cat /proc/self/uid_map")
		stdout, stderr, code := e.run(t, dir, false, "run", id)
		if code != 0 {
			t.Fatalf("run %s: exit %d: %s", id, code, stderr)
		}
		got := strings.Fields(stdout)
		want := []string{"0", "0", strconv.Itoa(rootlessUID), "1"}
		if !slices.Equal(got, want) {
			t.Errorf("id -u; uid_map = %q, want %q", got, want)
		}
		// run removes its container when it exits.
		if _, _, code := e.run(t, "/", false, "state", id); code == 0 {
			t.Errorf("state %s after run: exit 0, want an error", id)
		}
	})

	t.Run("detached", func(t *testing.T) {
		dir, id := e.bundle(t, nil, "/bin/sleep", "1000")
		if _, stderr, code := e.run(t, dir, false, "run", "-d", id); code != 0 {
			t.Fatalf("run -d %s: exit %d: %s", id, code, stderr)
		}
		st := e.state(t, id)
		if st.Status != "running" || st.PID <= 0 {
			t.Fatalf("state %s: %+v, want running with a pid", id, st)
		}
		if uid := procUID(st.PID); uid != strconv.Itoa(rootlessUID) {
			t.Errorf("container init %d: host uid %q, want %d", st.PID, uid, rootlessUID)
		}
		stdout, stderr, code := e.run(t, "/", false, "exec", id, "/bin/sh", "-c", "id -u; readlink /proc/self/ns/user")
		if code != 0 {
			t.Errorf("exec %s: exit %d: %s", id, code, stderr)
		} else if initNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", st.PID)); strings.Join(strings.Fields(stdout), " ") != "0 "+initNS {
			t.Errorf("exec: id -u and user namespace %q, want 0 and the init's %q", stdout, initNS)
		}
		stdout, stderr, code = e.run(t, "/", false, "list", "-q")
		if code != 0 || !slices.Equal(strings.Fields(stdout), []string{id}) {
			t.Errorf("list -q: exit %d, %q (stderr %s), want [%s]", code, stdout, stderr, id)
		}
		if _, stderr, code := e.run(t, "/", false, "kill", id, "KILL"); code != 0 {
			t.Fatalf("kill %s: exit %d: %s", id, code, stderr)
		}
		deadline := time.Now().Add(30 * time.Second)
		for e.state(t, id).Status != "stopped" {
			if time.Now().After(deadline) {
				t.Fatalf("container %s: not stopped after SIGKILL", id)
			}
			time.Sleep(50 * time.Millisecond)
		}
		if _, stderr, code := e.run(t, "/", false, "delete", id); code != 0 {
			t.Fatalf("delete %s: exit %d: %s", id, code, stderr)
		}
		if stdout, _, code := e.run(t, "/", false, "list", "-q"); code != 0 || strings.TrimSpace(stdout) != "" {
			t.Errorf("list -q after delete: exit %d, %q, want nothing", code, stdout)
		}
		if uid := procUID(st.PID); uid == strconv.Itoa(rootlessUID) {
			t.Errorf("container init %d still alive after delete", st.PID)
		}
	})

	t.Run("default-root", func(t *testing.T) {
		// Without --root an unprivileged user's state goes to
		// $XDG_RUNTIME_DIR/gantry-oci, as runc's goes to .../runc.
		dir, id := e.bundle(t, nil, "/bin/true")
		if _, stderr, code := e.run(t, dir, true, "run", id); code != 0 {
			t.Fatalf("run %s without --root: exit %d: %s", id, code, stderr)
		}
		if _, err := os.Stat(filepath.Join(e.xdg, "gantry-oci")); err != nil {
			t.Errorf("state root under XDG_RUNTIME_DIR: %v", err)
		}
		if _, err := os.Lstat(filepath.Join(e.xdg, "gantry-oci", id)); err == nil {
			t.Errorf("container %s: state entry left under XDG_RUNTIME_DIR after run", id)
		}
	})

	// As runc (tests/integration/cgroups.bats): without a cgroup the
	// user may not make, a limit is refused rather than dropped, and an
	// explicit linux.cgroupsPath the user may not write is an error.
	t.Run("memory-limit", func(t *testing.T) {
		limit := int64(64 << 20)
		dir, id := e.bundle(t, func(s *specs.Spec) {
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}
		}, "/bin/true")
		_, stderr, code := e.run(t, dir, false, "run", id)
		if code == 0 || !strings.Contains(stderr, "linux.resources.memory") || !strings.Contains(stderr, "cgroup") {
			t.Errorf("run with a memory limit: exit %d, stderr %q; want a failure naming linux.resources.memory and the cgroup", code, stderr)
		}
	})
	t.Run("cgroups-path", func(t *testing.T) {
		cg := bundle.NewID(t.Name())
		dir, id := e.bundle(t, func(s *specs.Spec) {
			s.Linux.CgroupsPath = bundle.CgroupParent + "/" + cg
		}, "/bin/true")
		_, stderr, code := e.run(t, dir, false, "run", id)
		if code == 0 || !strings.Contains(stderr, "linux.cgroupsPath") || !strings.Contains(stderr, "permission denied") {
			t.Errorf("run with linux.cgroupsPath: exit %d, stderr %q; want a permission error naming linux.cgroupsPath", code, stderr)
		}
		if d := cgroupDirs(cg); len(d) > 0 {
			t.Errorf("cgroup %v left after a failed rootless run", d)
		}
	})
}

func (e *rootlessEnv) state(t *testing.T, id string) State {
	t.Helper()
	stdout, stderr, code := e.run(t, "/", false, "state", id)
	if code != 0 {
		t.Fatalf("state %s: exit %d: %s", id, code, stderr)
	}
	var s State
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("state %s: decode %q: %v", id, stdout, err)
	}
	return s
}

// procUID returns the real uid of a live pid, or "" when it is gone or a
// zombie.
func procUID(pid int) string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return ""
	}
	var uid string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == "State:" && f[1] == "Z" {
			return ""
		}
		if len(f) >= 2 && f[0] == "Uid:" {
			uid = f[1]
		}
	}
	return uid
}
