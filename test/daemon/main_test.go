package daemon

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
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/testbin"
	"github.com/gantry-project/gantry/test/testcgroup"
)

// binDir holds gantryd and gantry, built once by TestMain.
var binDir string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("test/daemon: skipped, needs root")
		return 0
	}
	dir, err := os.MkdirTemp("", "gantry-daemon-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testbin.Build(dir, "gantryd", "gantry"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	return m.Run()
}

// daemonEnv is one gantryd on its own temporary directories.
type daemonEnv struct {
	t       *testing.T
	dir     string
	root    string
	state   string
	sock    string
	config  string
	logPath string
	cmd     *exec.Cmd
	exited  chan error
	// cgroupParent is the daemon's cgroup_parent unless a test's config
	// names another; removed at the end of the test.
	cgroupParent string
}

// newEnv lays out the directories and a config whose registry config dir is
// private to the test (so the host's /etc/gantry is never read).
func newEnv(t *testing.T) *daemonEnv {
	t.Helper()
	dir := t.TempDir()
	e := &daemonEnv{
		t:       t,
		dir:     dir,
		root:    filepath.Join(dir, "root"),
		state:   filepath.Join(dir, "state"),
		sock:    filepath.Join(dir, "state", "gantryd.sock"),
		config:  filepath.Join(dir, "gantryd.toml"),
		logPath: filepath.Join(dir, "gantryd.log"),
	}
	e.cgroupParent = testcgroup.NewParent("gantry-e2e")
	e.writeConfig("")
	// Registered after t.TempDir, so it runs before the directory is
	// removed, and before start's, so it runs after gantryd has stopped.
	t.Cleanup(func() {
		unmountBelow(t, dir)
		if err := testcgroup.Remove(e.cgroupParent); err != nil {
			t.Error(err)
		}
	})
	return e
}

func (e *daemonEnv) writeConfig(extra string) {
	e.t.Helper()
	if !strings.Contains(extra, "cgroup_parent") {
		// Each daemon's containers in cgroups of their own: `system check`
		// must not see another test's (or the host's) containers.
		extra = fmt.Sprintf("cgroup_parent = %q\n%s", e.cgroupParent, extra)
	}
	body := fmt.Sprintf("log_level = \"debug\"\n%s\n[registry]\nconfig_dir = %q\n", extra, filepath.Join(e.dir, "etc"))
	if err := os.WriteFile(e.config, []byte(body), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

func (e *daemonEnv) daemonArgs() []string {
	return []string{"--root", e.root, "--state", e.state, "--address", e.sock, "--config", e.config}
}

// start runs gantryd and waits until it answers; t.Cleanup stops it with
// SIGTERM and checks that it exits 0 and removes its socket.
func (e *daemonEnv) start() {
	e.t.Helper()
	logf, err := os.Create(e.logPath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.cmd = exec.Command(filepath.Join(binDir, "gantryd"), e.daemonArgs()...)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		logf.Close()
		e.t.Fatalf("start gantryd: %v", err)
	}
	logf.Close()
	e.exited = make(chan error, 1)
	go func() { e.exited <- e.cmd.Wait() }()
	e.t.Cleanup(e.stop)

	deadline := time.Now().Add(30 * time.Second)
	for {
		_, _, code := e.gantry("version")
		if code == 0 {
			return
		}
		select {
		case err := <-e.exited:
			e.exited <- err
			e.t.Fatalf("gantryd exited at start-up: %v\n%s", err, e.log())
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("gantryd did not answer on %s\n%s", e.sock, e.log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *daemonEnv) stop() {
	if e.cmd == nil || e.cmd.Process == nil {
		return
	}
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.exited:
		if err != nil {
			e.t.Errorf("gantryd exited with %v after SIGTERM\n%s", err, e.log())
		}
		if _, err := os.Stat(e.sock); !errors.Is(err, os.ErrNotExist) {
			e.t.Errorf("socket %s left after shutdown: %v", e.sock, err)
		}
	case <-time.After(time.Minute):
		_ = e.cmd.Process.Kill()
		<-e.exited
		e.t.Errorf("gantryd did not stop within a minute of SIGTERM\n%s", e.log())
	}
	e.cmd = nil
}

func (e *daemonEnv) log() string {
	b, _ := os.ReadFile(e.logPath)
	return string(b)
}

// gantry runs the CLI against the env's socket.
func (e *daemonEnv) gantry(args ...string) (stdout, stderr string, code int) {
	e.t.Helper()
	return runGantry(e.t, append([]string{"--address", e.sock}, args...)...)
}

// mustGantry runs the CLI and fails the test unless it exits 0.
func (e *daemonEnv) mustGantry(args ...string) string {
	e.t.Helper()
	out, errOut, code := e.gantry(args...)
	if code != 0 {
		e.t.Fatalf("gantry %s: exit %d\nstdout: %s\nstderr: %s\ngantryd log:\n%s", strings.Join(args, " "), code, out, errOut, tail(e.log(), 30))
	}
	return out
}

func runGantry(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "gantry"), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Env = append(os.Environ(), "GANTRY_ADDRESS=", "GANTRY_NAMESPACE=")
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run gantry: %v", err)
	}
	return out.String(), errb.String(), code
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// unmountBelow detaches every mount at or below dir, deepest first.
func unmountBelow(t *testing.T, dir string) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Errorf("read mounts: %v", err)
		return
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
	for _, p := range points {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Errorf("unmount %s: %v", p, err)
		}
	}
}
