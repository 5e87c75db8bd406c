// Package reliability is the failure-and-recovery suite of gantryd (issue
// 5, "Reliability, shown by tests with real processes"): kill -9 of
// gantryd with containers running, gantryd killed at every named step of
// create, start, exec, stop and delete (GANTRYD_FAULT), a runtime call
// that hangs, kill -9 of a shim, and many run/stop/rm cycles from
// parallel clients. It builds gantryd, gantry, gantry-shim and gantry-oci
// into one directory, runs gantryd on temporary root, state, socket and
// cgroup parent, imports an offline busybox image and drives everything
// with the gantry CLI. Needs root.
package reliability

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/client"
	"github.com/gantry-project/gantry/test/clients"
	"github.com/gantry-project/gantry/test/testbin"
	"github.com/gantry-project/gantry/test/testcgroup"
)

var (
	binDir       string
	imageArchive string
)

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Println("test/reliability: skipped, needs root")
		return 0
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		fmt.Println("test/reliability: skipped, needs a static /bin/busybox (busybox-static)")
		return 0
	}
	dir, err := os.MkdirTemp("", "gantry-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	if err := testbin.Build(dir, "gantryd", "gantry", "gantry-shim", "gantry-oci"); err != nil {
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

// env is one gantryd on its own temporary directories and cgroup parent.
type env struct {
	t                      *testing.T
	dir, root, state, sock string
	config, logPath        string
	cgroupParent           string
	cmd                    *exec.Cmd
	exited                 chan error
	// extraEnv is added to gantryd's environment at the next start.
	extraEnv []string
}

// newEnv writes the config (extra TOML lines appended), starts gantryd
// and imports busybox. Cleanup removes every container, stops gantryd,
// then kills every process whose command line names the temporary
// directory, unmounts what is left below it and removes the cgroups under
// its cgroup parent, also when the test failed.
func newEnv(t *testing.T, extra ...string) *env {
	t.Helper()
	dir := t.TempDir()
	b := make([]byte, 4)
	rand.Read(b)
	e := &env{t: t, dir: dir, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state"),
		sock: filepath.Join(dir, "state", "gantryd.sock"), config: filepath.Join(dir, "gantryd.toml"),
		logPath: filepath.Join(dir, "gantryd.log"), cgroupParent: "/gantry-test-reliability-" + hex.EncodeToString(b)}
	body := fmt.Sprintf("log_level = \"debug\"\ncgroup_parent = %q\n%s\n[registry]\nconfig_dir = %q\n",
		e.cgroupParent, strings.Join(extra, "\n"), filepath.Join(dir, "etc"))
	if err := os.WriteFile(e.config, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		killProcessesOf(t, dir)
		unmountBelow(t, dir)
		if err := testcgroup.Remove(e.cgroupParent); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("gantryd log (tail):\n%s", tail(e.log(), 40))
		}
	})
	e.start()
	t.Cleanup(func() {
		if e.cmd == nil {
			return
		}
		out, _, _ := e.gantry("ps", "-a", "-q")
		for _, id := range strings.Fields(out) {
			e.gantry("rm", "-f", id)
		}
		e.stop()
	})
	e.mustGantry("import", imageArchive)
	e.mustGantry("tag", clients.ImageName, "busybox")
	return e
}

// start starts gantryd (with extraEnv) and waits until it answers.
func (e *env) start() {
	e.t.Helper()
	e.launch()
	deadline := time.Now().Add(time.Minute)
	for {
		if _, _, code := e.gantry("version"); code == 0 {
			return
		}
		select {
		case err := <-e.exited:
			e.cmd = nil
			e.t.Fatalf("gantryd exited at start-up: %v\n%s", err, tail(e.log(), 40))
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("gantryd did not answer on %s\n%s", e.sock, tail(e.log(), 40))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) launch() {
	e.t.Helper()
	logf, err := os.OpenFile(e.logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		e.t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== gantryd start %v\n", e.extraEnv)
	e.cmd = exec.Command(filepath.Join(binDir, "gantryd"), "--root", e.root, "--state", e.state, "--address", e.sock, "--config", e.config)
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.Env = append(os.Environ(), e.extraEnv...)
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := e.cmd.Start(); err != nil {
		e.t.Fatalf("start gantryd: %v", err)
	}
	e.exited = make(chan error, 1)
	go func(c *exec.Cmd, ch chan error) { ch <- c.Wait() }(e.cmd, e.exited)
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

// died reports whether gantryd has exited, and how.
func (e *env) died() (bool, error) {
	if e.cmd == nil {
		return true, nil
	}
	select {
	case err := <-e.exited:
		e.cmd = nil
		return true, err
	default:
		return false, nil
	}
}

func (e *env) pid() int { return e.cmd.Process.Pid }

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

// waitFor polls cond until it holds; it fails the test after two
// minutes (a deadline for a hang, not a timing assertion).
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s\n%s", what, tail(e.log(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type psEntry struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	State    string     `json:"state"`
	Status   string     `json:"status"`
	ExitCode *int       `json:"exitCode"`
	Pid      int        `json:"pid"`
	ExitedAt *time.Time `json:"exitedAt"`
}

// ps returns the containers by name.
func (e *env) ps() map[string]psEntry {
	e.t.Helper()
	var list []psEntry
	if err := json.Unmarshal([]byte(e.mustGantry("ps", "-a", "--format", "json")), &list); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]psEntry{}
	for _, p := range list {
		out[p.Name] = p
	}
	return out
}

// systemCheck runs gantry system check and returns its output and exit
// code.
func (e *env) systemCheck() (string, int) {
	out, errOut, code := e.gantry("system", "check")
	return out + errOut, code
}

// assertClean checks that nothing of any container is left: no record,
// shim or container process, mount, bundle, shim or runtime state,
// container files, container snapshot or cgroup; and that gantry system
// check agrees.
func (e *env) assertClean() {
	e.t.Helper()
	if out := strings.TrimSpace(e.mustGantry("ps", "-a", "-q")); out != "" {
		e.t.Errorf("containers left: %s", out)
	}
	if pids := processesOf(e.dir, e.pidOrZero()); len(pids) > 0 {
		e.t.Errorf("processes left: %v", pids)
	}
	if m := mountsBelow(e.dir); len(m) > 0 {
		e.t.Errorf("mounts left: %v", m)
	}
	for _, d := range []string{filepath.Join(e.state, "shims", "default"), filepath.Join(e.state, "bundles", "default"),
		filepath.Join(e.root, "containers", "default")} {
		if ents, _ := os.ReadDir(d); len(ents) > 0 {
			e.t.Errorf("%s left in %s", ents[0].Name(), d)
		}
	}
	rts, _ := os.ReadDir(filepath.Join(e.state, "runtime"))
	for _, rt := range rts {
		ents, _ := os.ReadDir(filepath.Join(e.state, "runtime", rt.Name()))
		for _, ent := range ents {
			if !strings.HasPrefix(ent.Name(), ".") { // dot directories are the runtime's caches
				e.t.Errorf("runtime state %s left in %s", ent.Name(), filepath.Join(e.state, "runtime", rt.Name()))
			}
		}
	}
	if out := e.mustGantry("snapshot", "ls"); strings.Contains(out, "container/") {
		e.t.Errorf("container snapshot left:\n%s", out)
	}
	if cg := testcgroup.Under(e.cgroupParent); len(cg) > 0 {
		e.t.Errorf("cgroups left: %v", cg)
	}
	if out, code := e.systemCheck(); code != 0 {
		e.t.Errorf("gantry system check: exit %d\n%s", code, out)
	}
}

func (e *env) pidOrZero() int {
	if e.cmd == nil {
		return 0
	}
	return e.cmd.Process.Pid
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// processesOf lists the live processes (not zombies) whose command line
// mentions dir, but not except (gantryd itself).
func processesOf(dir string, except int) []int {
	var out []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() || pid == except {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, []byte(dir)) {
			continue
		}
		if st, _ := procState(pid); st == "Z" {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// procState returns the state letter and parent pid of pid.
func procState(pid int) (state string, ppid int) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return "", 0
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 2 {
		return "", 0
	}
	ppid, _ = strconv.Atoi(f[1])
	return f[0], ppid
}

// shimsOf lists the pids of live gantry-shim processes serving below dir.
func shimsOf(dir string) []int {
	var out []int
	for _, pid := range processesOf(dir, 0) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if bytes.Contains(cmdline, []byte("gantry-shim")) {
			out = append(out, pid)
		}
	}
	return out
}

// zombiesOf lists the zombies whose parent is one of parents.
func zombiesOf(parents []int) []int {
	want := map[int]bool{}
	for _, p := range parents {
		want[p] = true
	}
	var out []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		if st, ppid := procState(pid); st == "Z" && want[ppid] {
			out = append(out, pid)
		}
	}
	return out
}

func killProcessesOf(t *testing.T, dir string) {
	for _, pid := range processesOf(dir, 0) {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		t.Logf("killing leftover process %d: %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " "))
		syscall.Kill(pid, syscall.SIGCONT)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// mountsBelow lists the mount points at or below dir, deepest first.
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

// fdCount and rss describe a process's resources.
func fdCount(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

func rssKB(pid int) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, "VmRSS:") {
			f := strings.Fields(l)
			if len(f) >= 2 {
				n, _ := strconv.Atoi(f[1])
				return n
			}
		}
	}
	return 0
}

// restartAfterFault waits for gantryd to have died at the fault point
// (a kill on its way gets 5 s; a gantryd that did not die fails the test),
// starts it again and returns the container's state ("gone" when it does
// not exist), which must be one of want.
func (e *env) restartAfterFault(t *testing.T, point, name string, want []string) (string, bool) {
	t.Helper()
	if dead, _ := e.died(); !dead {
		select {
		case <-e.exited:
			e.cmd = nil
		case <-time.After(5 * time.Second):
			t.Fatalf("gantryd did not die at %s", point)
		}
	}
	e.start()
	p, exists := e.ps()[name]
	got := "gone"
	if exists {
		got = p.State
	}
	if !slices.Contains(want, got) {
		t.Errorf("after the restart the container is %q (%+v), want one of %v", got, p, want)
	}
	return got, exists
}

// client returns a Go client of gantryd, closed when the test ends.
func (e *env) client() *client.Client {
	e.t.Helper()
	c, err := client.New(e.sock)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	return c
}

// awaitEvents replays the events of container id that gantryd holds with
// a sequence above since, then follows the new ones, until it has seen
// every topic of want; it returns the last event of each topic seen. It
// fails the test after a minute (a bound for a hang).
func (e *env) awaitEvents(id string, since uint64, want ...string) map[string]*gantryv1.Event {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := map[string]*gantryv1.Event{}
	errDone := errors.New("seen all")
	err := e.client().Subscribe(ctx, []string{"id=" + id}, since, false, func(ev *gantryv1.Event) error {
		got[ev.GetTopic()] = ev
		for _, w := range want {
			if got[w] == nil {
				return nil
			}
		}
		return errDone
	})
	if !errors.Is(err, errDone) {
		seen := slices.Sorted(maps.Keys(got))
		e.t.Fatalf("events of %s: want %v, saw %v (%v)", id, want, seen, err)
	}
	return got
}

// runs tells whether pid is a live process (not a zombie) whose command
// line contains cmd, so that a reused pid does not count.
func runs(pid int, cmd string) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmdline, []byte(cmd)) {
		return false
	}
	st, _ := procState(pid)
	return st != "" && st != "Z"
}
