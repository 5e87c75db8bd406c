// Package containers is the end-to-end suite of containers through
// gantryd: it builds gantryd, gantry, gantry-shim, gantry-oci and
// gantry-init into one directory (so gantryd finds the shim, the runtime
// and the init next to itself),
// runs gantryd on temporary root, state and socket, imports an offline
// busybox image and drives everything with the gantry CLI. Needs root.
package containers

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

	"github.com/gantry-project/gantry/test/clients"
	"github.com/gantry-project/gantry/test/testbin"
	"github.com/gantry-project/gantry/test/testcgroup"
	"github.com/gantry-project/gantry/test/testproc"
)

var (
	binDir       string
	imageArchive string
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("test/containers: skipped, needs root")
		return 0
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		fmt.Println("test/containers: skipped, needs a static /bin/busybox (busybox-static)")
		return 0
	}
	dir, err := os.MkdirTemp("", "gantry-containers-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testbin.Build(dir, "gantryd", "gantry", "gantry-shim", "gantry-oci", "gantry-init"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	imageArchive = filepath.Join(dir, "busybox.tar")
	if err := clients.WriteImageArchive(imageArchive, "/bin/busybox"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

// env is one gantryd on its own temporary directories.
type env struct {
	t                      *testing.T
	dir, root, state, sock string
	config, logPath        string
	cmd                    *exec.Cmd
	exited                 chan error
}

// newEnv starts gantryd and imports busybox (named "busybox"). Cleanup
// removes every container, stops gantryd, kills the shims whose command
// line names the temporary directory and unmounts what is left below it.
func newEnv(t *testing.T) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, dir: dir, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"),
		sock: filepath.Join(dir, "state", "gantryd.sock"), config: filepath.Join(dir, "gantryd.toml"),
		logPath: filepath.Join(dir, "gantryd.log")}
	// The containers' cgroups go below a parent of this test's own.
	cgroupParent := testcgroup.NewParent("gantry-e2e")
	body := fmt.Sprintf("log_level = \"debug\"\ncgroup_parent = %q\n[registry]\nconfig_dir = %q\n", cgroupParent, filepath.Join(dir, "etc"))
	if err := os.WriteFile(e.config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killShims(t, dir)
		unmountBelow(t, dir)
		if err := testcgroup.Remove(cgroupParent); err != nil {
			t.Error(err)
		}
	})
	e.start()
	t.Cleanup(func() {
		if e.cmd == nil {
			return
		}
		for _, id := range strings.Fields(e.mustGantry("ps", "-a", "-q")) {
			e.gantry("rm", "-f", id)
		}
		e.stop()
	})
	e.mustGantry("import", imageArchive)
	e.mustGantry("tag", clients.ImageName, "busybox")
	return e
}

func (e *env) start() {
	e.t.Helper()
	logf, err := os.OpenFile(e.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	e.cmd = exec.Command(filepath.Join(binDir, "gantryd"), "--root", e.root, "--state", e.state, "--address", e.sock, "--config", e.config)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		logf.Close()
		e.t.Fatalf("start gantryd: %v", err)
	}
	logf.Close()
	e.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(e.cmd, e.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, _, code := e.gantry("version"); code == 0 {
			return
		}
		select {
		case err := <-e.exited:
			e.t.Fatalf("gantryd exited at start-up: %v\n%s", err, e.log())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("gantryd did not answer on %s\n%s", e.sock, e.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop ends gantryd with SIGTERM.
func (e *env) stop() {
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(time.Minute):
		e.cmd.Process.Kill()
		<-e.exited
		e.t.Errorf("gantryd did not stop within a minute of SIGTERM")
	}
	e.cmd = nil
}

// crash kills gantryd with SIGKILL.
func (e *env) crash() {
	e.t.Helper()
	e.cmd.Process.Kill()
	<-e.exited
	e.cmd = nil
}

func (e *env) log() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

func (e *env) gantry(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "gantry"), append([]string{"--address", e.sock}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "GANTRY_ADDRESS=", "GANTRY_NAMESPACE=")
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		e.t.Fatalf("run gantry: %v", err)
	}
	return out.String(), errb.String(), code
}

func (e *env) mustGantry(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.gantry(args...)
	if code != 0 {
		e.t.Fatalf("gantry %s: exit %d\nstdout: %s\nstderr: %s\ngantryd log:\n%s", strings.Join(args, " "), code, out, errOut, tail(e.log(), 30))
	}
	return out
}

// waitFor polls cond until it holds; it fails the test after a minute
// (a deadline for a hang, not a timing assertion).
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			ps, _, _ := e.gantry("ps", "-a", "--format", "json")
			e.t.Fatalf("timed out waiting for %s\nps -a: %s\n%s", what, ps, tail(withoutPolls(e.log()), 40))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// withoutPolls drops the log's lines for List calls: a waitFor's polling
// would push what matters out of the tail.
func withoutPolls(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "/List ") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// killShims kills every process whose command line mentions dir (shims
// and containers left by a failed test).
func killShims(t *testing.T, dir string) {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte(dir)) {
			t.Logf("killing leftover process %d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// shimsOf lists the pids of processes whose command line mentions dir.
func shimsOf(dir string) []int {
	var out []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, []byte("gantry-shim")) && bytes.Contains(cmdline, []byte(dir)) && testproc.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// mountsBelow lists the mount points at or below dir.
func mountsBelow(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var points []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			points = append(points, fields[4])
		}
	}
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	return points
}

func unmountBelow(t *testing.T, dir string) {
	for _, p := range mountsBelow(dir) {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount %s: %v", p, err)
		}
	}
}

// assertClean checks that no container, shim, mount, bundle, shim state
// or container snapshot is left.
func (e *env) assertClean() {
	e.t.Helper()
	if out := strings.TrimSpace(e.mustGantry("ps", "-a", "-q")); out != "" {
		e.t.Errorf("containers left: %s", out)
	}
	if pids := shimsOf(e.dir); len(pids) > 0 {
		e.t.Errorf("shims left: %v", pids)
	}
	if m := mountsBelow(e.dir); len(m) > 0 {
		e.t.Errorf("mounts left: %v", m)
	}
	for _, d := range []string{"shims/default", "bundles/default"} {
		if ents, _ := os.ReadDir(filepath.Join(e.state, d)); len(ents) > 0 {
			e.t.Errorf("%s left in %s", ents[0].Name(), filepath.Join(e.state, d))
		}
	}
	if out := e.mustGantry("snapshot", "ls"); strings.Contains(out, "container/") {
		e.t.Errorf("container snapshot left:\n%s", out)
	}
}
