package clients

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/testbin"
)

// commandTimeout bounds one client invocation so that a hung client or
// runtime fails its test instead of the whole suite; it is a safety net,
// not a timing assertion.
const commandTimeout = 2 * time.Minute

var (
	// runtimePath is the absolute path of the runtime under test.
	runtimePath string
	// imageArchive is the OCI archive of the busybox image, built once.
	imageArchive string
	// skipAll, when set, is why every client test skips.
	skipAll string
)

func TestMain(m *testing.M) {
	code, err := setup(m)
	if err != nil {
		fmt.Fprintf(os.Stderr, "clients: %v\n", err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	if os.Geteuid() != 0 {
		skipAll = "client end-to-end tests need root"
		return m.Run(), nil
	}
	dir, err := os.MkdirTemp("", "gantry-clients-")
	if err != nil {
		return 0, fmt.Errorf("make temp dir: %w", err)
	}
	defer os.RemoveAll(dir)

	if p := os.Getenv("GANTRY_RUNTIME"); p != "" {
		if !filepath.IsAbs(p) {
			return 0, fmt.Errorf("GANTRY_RUNTIME %q: not an absolute path", p)
		}
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return 0, fmt.Errorf("GANTRY_RUNTIME %q: not an executable file", p)
		}
		runtimePath = p
	} else if p, err := buildGantryOCI(dir); err != nil {
		skipAll = fmt.Sprintf("GANTRY_RUNTIME is unset and gantry-oci does not build (%v); "+
			"set GANTRY_RUNTIME=$(command -v runc) to check the suite itself", err)
	} else {
		runtimePath = p
	}

	if skipAll == "" {
		busybox, err := findBusybox()
		if err != nil {
			skipAll = err.Error()
		} else {
			imageArchive = filepath.Join(dir, "busybox-oci.tar")
			if err := WriteImageArchive(imageArchive, busybox); err != nil {
				return 0, fmt.Errorf("build busybox image: %w", err)
			}
		}
	}
	runDirExisted := pathExists("/run/containerd")
	code := m.Run()
	if !runDirExisted {
		// containerd 1.6 shims always put their sockets in
		// /run/containerd/s; remove what they made if it is empty now.
		os.Remove("/run/containerd/s")
		os.Remove("/run/containerd")
	}
	return code, nil
}

func pathExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// findBusybox returns a statically linked busybox (busybox-static).
func findBusybox() (string, error) {
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		out, err := exec.Command("file", "-L", p).Output()
		if err == nil && bytes.Contains(out, []byte("statically linked")) {
			return p, nil
		}
		if err != nil && pathExists(p) {
			// No file(1): trust the Debian busybox-static path.
			return p, nil
		}
	}
	return "", errors.New("no static busybox at /bin/busybox (install busybox-static)")
}

// buildGantryOCI builds gantry-oci from the working tree into dir.
func buildGantryOCI(dir string) (string, error) {
	if err := testbin.Build(dir, "gantry-oci"); err != nil {
		return "", err
	}
	return filepath.Join(dir, "gantry-oci"), nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

// requireSuite skips t when the suite cannot run, or when one of tools is
// not installed.
func requireSuite(t *testing.T, tools ...string) {
	t.Helper()
	if skipAll != "" {
		t.Skip(skipAll)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (scripts/deps.sh installs it)", tool)
		}
	}
}

// result is what one client invocation did.
type result struct {
	args   []string
	stdout string
	stderr string
	code   int // -1 when the command could not run or was killed
}

func (r result) String() string {
	return fmt.Sprintf("`%s`: exit %d\nstdout: %s\nstderr: %s", strings.Join(r.args, " "), r.code,
		strings.TrimSpace(r.stdout), strings.TrimSpace(r.stderr))
}

// runCommand runs name with args and env added to the environment, with
// stdin from stdin (nil: /dev/null), and returns what it did. Output goes
// to files, not pipes, so that a daemon or container that inherits the
// client's stdio does not keep the call waiting.
// runCommandShown runs a command and shows only the last shown arguments
// in logs and failure messages (the rest are the same long flags on every
// call).
func runCommandShown(t testing.TB, env []string, stdin []byte, shown int, name string, args ...string) result {
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
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	runErr := cmd.Run()
	r := result{args: append([]string{filepath.Base(name)}, args[len(args)-min(shown, len(args)):]...)}
	var exitErr *exec.ExitError
	switch {
	case runErr == nil:
	case errors.As(runErr, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		r.code = -1
	}
	if ctx.Err() != nil {
		t.Errorf("%s: killed after %v", strings.Join(r.args, " "), commandTimeout)
		r.code = -1
	}
	o, _ := os.ReadFile(outF.Name())
	e, _ := os.ReadFile(errF.Name())
	r.stdout, r.stderr = string(o), string(e)
	if r.code != 0 && strings.TrimSpace(r.stderr) != "" {
		t.Logf("%s: exit %d: %s", strings.Join(r.args, " "), r.code, firstLine(r.stderr))
	} else {
		t.Logf("%s: exit %d", strings.Join(r.args, " "), r.code)
	}
	return r
}

// writeRuntimeWrapper writes dir/runc, a shell script that appends each
// invocation's arguments to dir/runtime-calls.log and then execs the
// runtime under test, and returns its path. The clients are given the
// wrapper, so a failure report can show what they asked the runtime; it is
// named runc because podman keys some behaviour (JSON error logs) on the
// runtime's base name, and the runtime under test is a drop-in for runc.
// When root is set, calls without a --root get --root root first.
func writeRuntimeWrapper(t testing.TB, dir, root string) (wrapper, callLog string) {
	t.Helper()
	callLog = filepath.Join(dir, "runtime-calls.log")
	wrapper = filepath.Join(dir, "runc")
	script := "#!/bin/sh\n"
	if root != "" {
		script += fmt.Sprintf("case \" $* \" in *\" --root \"*|*\" --root=\"*) ;; *) set -- --root %s \"$@\" ;; esac\n", shellQuote(root))
	}
	script += fmt.Sprintf("printf '%%s\\n' \"$*\" >> %s\nexec %s \"$@\"\n", shellQuote(callLog), shellQuote(runtimePath))
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return wrapper, callLog
}

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tailFile returns the last max bytes of path, or a note why it cannot.
func tailFile(path string, max int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf("(%v)", err)
	}
	if len(b) > max {
		b = append([]byte("..."), b[len(b)-max:]...)
	}
	return strings.TrimSpace(string(b))
}

// runtimeLogs returns the tails of the runtime --log files matching the
// glob patterns.
func runtimeLogs(patterns ...string) string {
	var b strings.Builder
	for _, p := range patterns {
		files, _ := filepath.Glob(p)
		for _, f := range files {
			fmt.Fprintf(&b, "\n--- %s:\n%s", f, tailFile(f, 4000))
		}
	}
	if b.Len() == 0 {
		return "(no runtime log files)"
	}
	return b.String()
}

// mountsUnder returns the mount points at or below dir in this mount
// namespace, deepest first.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountPath(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i]) > len(out[j]) })
	return out
}

// unescapeMountPath undoes the octal escapes of /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// unmountUnder detaches every mount at or below dir and reports each one
// as a leftover on t when report is set.
func unmountUnder(t testing.TB, dir string, report bool) {
	t.Helper()
	for _, m := range mountsUnder(dir) {
		if report {
			t.Errorf("mount %s left after cleanup; unmounting it", m)
		}
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount %s: %v", m, err)
		}
	}
}

// processesMentioning returns the pids of the processes (but this one)
// whose command line contains s.
func processesMentioning(s string) []int {
	var pids []int
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() || pid <= 1 {
			continue
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(s)) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// reapProcessesMentioning gives the processes whose command line contains
// s (shims, conmons, podman's exit commands) a grace period to finish on
// their own, then SIGKILLs those left and returns their descriptions.
func reapProcessesMentioning(s string) []string {
	deadline := time.Now().Add(15 * time.Second)
	for len(processesMentioning(s)) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	return killProcessesMentioning(s)
}

// killProcessesMentioning SIGKILLs every process (but this one) whose
// command line contains s, and returns their descriptions.
func killProcessesMentioning(s string) []string {
	var killed []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		if err != nil || pid == os.Getpid() || pid <= 1 {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte(s)) {
			continue
		}
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			killed = append(killed, fmt.Sprintf("%d (%s)", pid, strings.TrimSpace(strings.ReplaceAll(string(b), "\x00", " "))))
		}
	}
	return killed
}

// removeCgroup removes the cgroup rel (a path below each hierarchy's root)
// from every v1 hierarchy and the v2 mount: it kills what is left in it,
// thaws it, and removes its directories deepest first. It returns the
// directories that were there.
func removeCgroup(t testing.TB, rel string) []string {
	t.Helper()
	rel = strings.Trim(rel, "/")
	if rel == "" || strings.Contains(rel, "..") {
		t.Errorf("refusing to remove cgroup %q", rel)
		return nil
	}
	var found []string
	roots, _ := filepath.Glob("/sys/fs/cgroup/*")
	for _, root := range roots {
		top := filepath.Join(root, rel)
		if st, err := os.Stat(top); err != nil || !st.IsDir() {
			continue
		}
		var dirs []string
		filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		sort.Slice(dirs, func(i, j int) bool { return len(dirs[i]) > len(dirs[j]) })
		for _, d := range dirs {
			found = append(found, d)
			os.WriteFile(filepath.Join(d, "freezer.state"), []byte("THAWED"), 0o644)
			if b, err := os.ReadFile(filepath.Join(d, "cgroup.procs")); err == nil {
				for _, f := range strings.Fields(string(b)) {
					if pid, err := strconv.Atoi(f); err == nil && pid > 1 && pid != os.Getpid() {
						syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			}
			var err error
			for i := 0; i < 100; i++ {
				if err = os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
					err = nil
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err != nil {
				t.Errorf("remove cgroup %s: %v", d, err)
			}
		}
	}
	return found
}

// waitFor polls cond until it is true, failing t with what() after a
// generous deadline (a safety net against hangs, not a timing assertion).
func waitFor(t testing.TB, what func() string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// randomSuffix returns a short suffix that makes names unique per process
// and call.
var suffixCounter int

func randomSuffix() string {
	suffixCounter++
	return fmt.Sprintf("%d-%d", os.Getpid(), suffixCounter)
}

// cgroupOf returns the path of pid's cgroup in the v1 hierarchy of
// controller (e.g. "memory"), below the hierarchy's root.
func cgroupOf(pid int, controller string) (string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return "", fmt.Errorf("read cgroup of pid %d: %w", pid, err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		parts := strings.SplitN(l, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			if c == controller {
				return parts[2], nil
			}
		}
	}
	return "", fmt.Errorf("pid %d: no %s cgroup in %q", pid, controller, string(b))
}

// hasV1Controller reports whether controller is mounted as a cgroup v1
// hierarchy at /sys/fs/cgroup/<controller>.
func hasV1Controller(controller string) bool {
	var st unix.Statfs_t
	if err := unix.Statfs(filepath.Join("/sys/fs/cgroup", controller), &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC
}
