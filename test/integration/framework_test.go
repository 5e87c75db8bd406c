package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/bundle"
	"github.com/gantry-project/gantry/test/probe/report"
	"github.com/gantry-project/gantry/test/testbin"
)

// commandTimeout bounds one runtime invocation so that a hung runtime fails
// its test instead of the whole suite; it is a safety net, not a timing
// assertion.
const commandTimeout = 2 * time.Minute

var (
	// runtimePath is the absolute path of the runtime under test.
	runtimePath string
	// runtimeIsRunc is true when the runtime says it is runc; tests of
	// features runc 1.1 lacks skip then.
	runtimeIsRunc bool
	// skipAll, when set, is why every test skips.
	skipAll string
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "integration: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	if os.Geteuid() != 0 {
		skipAll = "end-to-end runtime tests need root"
		return m.Run(), nil
	}
	if p := os.Getenv("GANTRY_RUNTIME"); p != "" {
		if !filepath.IsAbs(p) {
			return 0, fmt.Errorf("GANTRY_RUNTIME %q: not an absolute path", p)
		}
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return 0, fmt.Errorf("GANTRY_RUNTIME %q: not an executable file", p)
		}
		runtimePath = p
	} else {
		dir, err := os.MkdirTemp("", "gantry-oci-e2e-")
		if err != nil {
			return 0, fmt.Errorf("make temp dir for gantry-oci: %w", err)
		}
		defer os.RemoveAll(dir)
		p, err := buildGantryOCI(dir)
		if err != nil {
			skipAll = fmt.Sprintf("GANTRY_RUNTIME is unset and gantry-oci does not build (%v); "+
				"set GANTRY_RUNTIME=/usr/sbin/runc to check the suite itself", err)
		}
		runtimePath = p
	}
	if runtimePath != "" {
		out, _ := exec.Command(runtimePath, "--version").Output()
		runtimeIsRunc = bytes.HasPrefix(out, []byte("runc version"))
	}
	code := m.Run()
	if err := bundle.RemoveCgroupParent(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code, nil
}

// buildGantryOCI builds gantry-oci from the working tree into dir.
func buildGantryOCI(dir string) (string, error) {
	if err := testbin.Build(dir, "gantry-oci"); err != nil {
		return "", err
	}
	return filepath.Join(dir, "gantry-oci"), nil
}

// container is one container a test made, for the cleanup.
type container struct {
	id     string
	bundle string
}

// testEnv is the per-test state: the runtime's --root and the containers to
// delete and check at the end.
type testEnv struct {
	root       string
	mu         sync.Mutex
	containers []container
}

var envs sync.Map // testing.TB -> *testEnv

// env returns t's environment, making it (and registering its cleanup) on
// first use. It skips the test when the suite cannot run.
func env(t testing.TB) *testEnv {
	t.Helper()
	if skipAll != "" {
		t.Skip(skipAll)
	}
	if e, ok := envs.Load(t); ok {
		return e.(*testEnv)
	}
	e := &testEnv{root: t.TempDir()}
	envs.Store(t, e)
	t.Cleanup(func() {
		e.cleanup(t)
		envs.Delete(t)
	})
	return e
}

// Root returns the --root directory of t's runtime invocations.
func Root(t testing.TB) string {
	t.Helper()
	return env(t).root
}

// track records a container for the cleanup once.
func (e *testEnv) track(id, bundleDir string) {
	if !safeID(id) {
		return // never a path for the clean-up (see safeID)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.containers {
		if c.id == id {
			return
		}
	}
	e.containers = append(e.containers, container{id: id, bundle: bundleDir})
}

// trackArgs records the container of a create or run invocation: the
// command is the first argument not starting with "-", the id the last
// argument, and the bundle the value of --bundle/-b (default: cwd).
func (e *testEnv) trackArgs(args []string) {
	cmd := ""
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			cmd = a
			break
		}
	}
	if (cmd != "create" && cmd != "run") || len(args) < 2 {
		return
	}
	bundleDir, _ := os.Getwd()
	for i, a := range args {
		switch {
		case (a == "--bundle" || a == "-b") && i+1 < len(args):
			bundleDir = args[i+1]
		case strings.HasPrefix(a, "--bundle="):
			bundleDir = strings.TrimPrefix(a, "--bundle=")
		}
	}
	e.track(args[len(args)-1], bundleDir)
}

// Run runs the runtime with --root of t and args, and returns its stdout,
// stderr and exit code (-1 when it could not run or was killed). The
// container of a create or run is deleted and checked at the end of t.
// Output goes to files, not pipes, so that a detached container holding
// the runtime's stdio does not keep Run waiting.
func Run(t testing.TB, args ...string) (stdout, stderr string, exitCode int) {
	t.Helper()
	e := env(t)
	e.trackArgs(args)
	return runRuntime(t, e.root, args...)
}

func runRuntime(t testing.TB, root string, args ...string) (string, string, int) {
	t.Helper()
	dir := t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "stdout"))
	if err != nil {
		t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errF.Close()

	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	full := append([]string{"--root", root}, args...)
	cmd := exec.CommandContext(ctx, runtimePath, full...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	runErr := cmd.Run()
	code := 0
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exitErr):
		code = exitErr.ExitCode()
	default:
		code = -1
	}
	if ctx.Err() != nil {
		t.Errorf("%s %s: killed after %v", runtimePath, strings.Join(full, " "), commandTimeout)
		code = -1
	}
	stdout, _ := os.ReadFile(outF.Name())
	stderr, _ := os.ReadFile(errF.Name())
	t.Logf("%s %s: exit %d; stderr: %s", filepath.Base(runtimePath), strings.Join(args, " "), code, strings.TrimSpace(string(stderr)))
	return string(stdout), string(stderr), code
}

// RunBundle runs b in the foreground (`run --bundle DIR ID`), requires exit
// status 0 and returns the probe's report; b's process must be `/probe
// report ...`.
func RunBundle(t testing.TB, b *bundle.Bundle) *report.Report {
	t.Helper()
	stdout, stderr, code := Run(t, "run", "--bundle", b.Dir, b.ID)
	if code != 0 {
		t.Fatalf("run %s: exit %d, stderr: %s", b.ID, code, stderr)
	}
	r, err := report.Parse([]byte(stdout))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// RunOutput runs b in the foreground, requires exit status 0 and returns
// its stdout.
func RunOutput(t testing.TB, b *bundle.Bundle) string {
	t.Helper()
	stdout, stderr, code := Run(t, "run", "--bundle", b.Dir, b.ID)
	if code != 0 {
		t.Fatalf("run %s: exit %d, stderr: %s, stdout: %s", b.ID, code, stderr, stdout)
	}
	return stdout
}

// State is the part of the runtime's `state` output the tests read.
type State struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	PID    int    `json:"pid"`
	Bundle string `json:"bundle"`
}

// GetState runs `state ID` and decodes it; it fails t when the runtime
// fails.
func GetState(t testing.TB, id string) State {
	t.Helper()
	stdout, stderr, code := Run(t, "state", id)
	if code != 0 {
		t.Fatalf("state %s: exit %d, stderr: %s", id, code, stderr)
	}
	var s State
	if err := json.Unmarshal([]byte(stdout), &s); err != nil {
		t.Fatalf("state %s: decode %q: %v", id, stdout, err)
	}
	return s
}

// WaitStatus polls `state ID` until it reports status, failing t after a
// generous deadline (a safety net against hangs, not a timing assertion).
func WaitStatus(t testing.TB, id, status string) State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := GetState(t, id)
		if s.Status == status {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: status %q, want %q", id, s.Status, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// List returns the ids of `list -q`.
func List(t testing.TB) []string {
	t.Helper()
	stdout, stderr, code := Run(t, "list", "-q")
	if code != 0 {
		t.Fatalf("list -q: exit %d, stderr: %s", code, stderr)
	}
	return strings.Fields(stdout)
}

// cgroupDirs returns the host directories that may hold the cgroup of
// container id (v1 controllers and the v2 mount).
// safeID reports whether id can be used as a path element in the clean-up:
// "..", "." or an id with a "/" would turn "/sys/fs/cgroup/*/<CgroupParent>/ID"
// into a host cgroup whose processes the clean-up would kill.
func safeID(id string) bool {
	return id != "" && id != "." && id != ".." && !strings.ContainsAny(id, "/\x00") && !strings.Contains(id, "..")
}

func cgroupDirs(id string) []string {
	if !safeID(id) {
		return nil
	}
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", bundle.CgroupParent, id))
	if st, err := os.Stat(filepath.Join("/sys/fs/cgroup", bundle.CgroupParent, id)); err == nil && st.IsDir() {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", bundle.CgroupParent, id))
	}
	return dirs
}

// cleanup deletes every container of the test and then fails the test for
// anything a container left behind, removing it so that the next test
// starts clean.
func (e *testEnv) cleanup(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	cs := append([]container(nil), e.containers...)
	e.mu.Unlock()
	for _, c := range cs {
		runRuntime(t, e.root, "delete", "--force", c.id)
		e.checkLeftovers(t, c)
	}
}

func (e *testEnv) checkLeftovers(t testing.TB, c container) {
	t.Helper()
	// Processes in the container's cgroup.
	marker := bundle.CgroupParent + "/" + c.id
	procs, _ := filepath.Glob("/proc/[0-9]*/cgroup")
	for _, p := range procs {
		b, err := os.ReadFile(p)
		if err != nil || !cgroupMatch(string(b), marker) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if pid == os.Getpid() || pid <= 1 {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join(filepath.Dir(p), "cmdline"))
		t.Errorf("container %s: process %d (%s) left running after delete --force; killing it",
			c.id, pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		syscall.Kill(pid, syscall.SIGKILL)
	}
	// Cgroup directories.
	for _, d := range cgroupDirs(c.id) {
		t.Errorf("container %s: cgroup %s left after delete --force; removing it", c.id, d)
		if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
			for _, f := range strings.Fields(string(b)) {
				if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		// Thaw a frozen cgroup so that its killed processes can die.
		os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0o644)
		var err error
		for i := 0; i < 50; i++ {
			if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove leftover cgroup %s: %v", d, err)
		}
	}
	// State directory entry (runc keeps <root>/<id>).
	if _, err := os.Lstat(filepath.Join(e.root, c.id)); err == nil {
		t.Errorf("container %s: state entry %s left after delete --force", c.id, filepath.Join(e.root, c.id))
	}
	// Mounts under the bundle in the test's mount namespace.
	if c.bundle != "" {
		for _, m := range mountsUnder(c.bundle) {
			t.Errorf("container %s: mount %s left in the host namespace; unmounting it", c.id, m)
			if err := unix.Unmount(m, unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", m, err)
			}
		}
	}
}

// cgroupMatch reports whether a /proc/PID/cgroup content puts the process
// in the cgroup path marker (exactly or below it).
func cgroupMatch(content, marker string) bool {
	for _, l := range strings.Split(content, "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if p := parts[2]; p == marker || strings.HasPrefix(p, marker+"/") {
			return true
		}
	}
	return false
}

// mountsUnder lists the mount points at or below dir, deepest first.
func mountsUnder(dir string) []string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	dir = filepath.Clean(dir)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		p := strings.ReplaceAll(f[4], `\040`, " ")
		if p == dir || strings.HasPrefix(p, dir+"/") {
			out = append([]string{p}, out...)
		}
	}
	return out
}

// hostNamespace returns the inode of the test process's namespace kind.
func hostNamespace(t testing.TB, kind string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/"+kind, &st); err != nil {
		t.Fatalf("stat /proc/self/ns/%s: %v", kind, err)
	}
	return st.Ino
}

// skipIfRunc skips t when the runtime under test is runc, which lacks the
// feature named by why.
func skipIfRunc(t testing.TB, why string) {
	t.Helper()
	if runtimeIsRunc {
		t.Skipf("runc %s: %s", "1.1", why)
	}
}
