package shim

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/ociclient"
	"github.com/gantry-project/gantry/internal/shim"
	"github.com/gantry-project/gantry/test/bundle"
	"github.com/gantry-project/gantry/test/testbin"
	"github.com/gantry-project/gantry/test/testproc"
)

var (
	shimBin     string
	runtimePath string
	skipAll     string
)

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	if os.Geteuid() != 0 {
		skipAll = "shim end-to-end tests need root"
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "gantry-shim-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	shimBin = filepath.Join(dir, "gantry-shim")
	if err := testbin.Build(dir, "gantry-shim"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if runtimePath = os.Getenv("GANTRY_RUNTIME"); runtimePath == "" {
		runtimePath = filepath.Join(dir, "gantry-oci")
		if err := testbin.Build(dir, "gantry-oci"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	code := m.Run()
	if err := bundle.RemoveCgroupParent(); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
	return code
}

// env is one shim under test.
type env struct {
	opts   shim.Options
	client *shim.Client
	bundle *bundle.Bundle
}

func options(t *testing.T, b *bundle.Bundle) shim.Options {
	dir := t.TempDir()
	return shim.Options{
		Namespace: "test", ID: b.ID,
		StateDir:    shim.Dir(filepath.Join(dir, "shims"), "test", b.ID),
		Bundle:      b.Dir,
		Runtime:     runtimePath,
		RuntimeRoot: filepath.Join(dir, "runtime"),
		LogPath:     filepath.Join(dir, "container.log"),
		Timeout:     2 * time.Minute,
	}
}

// startShim launches a shim for b and registers a cleanup that removes
// everything even when the test failed.
func startShim(t *testing.T, b *bundle.Bundle, edit func(*shim.Options)) *env {
	t.Helper()
	if skipAll != "" {
		t.Skip(skipAll)
	}
	o := options(t, b)
	if edit != nil {
		edit(&o)
	}
	t.Cleanup(func() { cleanup(t, o) })
	sock, err := shim.Launch(context.Background(), shimBin, o)
	if err != nil {
		t.Fatalf("Launch: %v", err)
	}
	if want := filepath.Join(o.StateDir, shim.SocketName); sock != want {
		t.Fatalf("socket = %q, want %q", sock, want)
	}
	return &env{opts: o, client: shim.NewClient(sock), bundle: b}
}

func cleanup(t *testing.T, o shim.Options) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if pid, err := ociclient.ReadPidFile(filepath.Join(o.StateDir, shim.PidName)); err == nil {
		c := shim.NewClient(filepath.Join(o.StateDir, shim.SocketName))
		if _, err := c.Delete(ctx, "", true); err != nil {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	rt := &ociclient.Runtime{Binary: runtimePath, Root: o.RuntimeRoot}
	rt.Delete(ctx, o.ID, true)
	os.RemoveAll(o.StateDir)
	for _, d := range cgroupDirs(o.ID) {
		os.Remove(d)
	}
}

// cgroupDirs lists the cgroup directories of a test container (id "": the
// test parent).
func cgroupDirs(id string) []string {
	var out []string
	pattern := filepath.Join("/sys/fs/cgroup", "*", bundle.CgroupParent, id)
	m, _ := filepath.Glob(pattern)
	out = append(out, m...)
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", bundle.CgroupParent, id)); err == nil {
		out = append(out, filepath.Join("/sys/fs/cgroup", bundle.CgroupParent, id))
	}
	return out
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

func shimPid(t *testing.T, o shim.Options) int {
	t.Helper()
	pid, err := ociclient.ReadPidFile(filepath.Join(o.StateDir, shim.PidName))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// logEntries reads the container log.
func logEntries(t *testing.T, path string) []map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e map[string]string
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func hasEntry(entries []map[string]string, stream, text string) bool {
	for _, e := range entries {
		if e["stream"] == stream && e["log"] == text && e["time"] != "" {
			return true
		}
	}
	return false
}

func waitGone(t *testing.T, what string, pid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for testproc.Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s (pid %d) still runs", what, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOutputAndDurableExit(t *testing.T) {
	b := bundle.New(t, bundle.Args("/bin/sh", "-c", "echo out; echo err >&2; exit 3"))
	e := startShim(t, b, nil)
	c := ctx(t)
	st, err := e.client.State(c, "")
	if err != nil || st.Status != shimapi.StatusCreated || st.Pid <= 0 {
		t.Fatalf("State after create = %+v, %v", st, err)
	}
	if _, err := e.client.Start(c); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st, err = e.client.Wait(c, "")
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if st.Status != shimapi.StatusStopped || st.ExitStatus != 3 || st.ExitedAt.IsZero() {
		t.Fatalf("Wait = %+v, want stopped with status 3", st)
	}
	// The exit was on disk before it was reported.
	rec, ok, err := shim.ReadExit(e.opts.StateDir)
	if err != nil || !ok || rec.ExitStatus != 3 || rec.Pid != st.Pid || !rec.ExitedAt.Equal(st.ExitedAt) {
		t.Fatalf("exit record = %+v, %v, %v; want status 3 of pid %d at %v", rec, ok, err, st.Pid, st.ExitedAt)
	}
	entries := logEntries(t, e.opts.LogPath)
	if !hasEntry(entries, "stdout", "out\n") || !hasEntry(entries, "stderr", "err\n") {
		t.Fatalf("log entries %v lack stdout \"out\" and stderr \"err\"", entries)
	}
	if st, err := e.client.State(c, ""); err != nil || st.ExitStatus != 3 {
		t.Fatalf("State after exit = %+v, %v", st, err)
	}
}

func TestStdinAttach(t *testing.T) {
	b := bundle.New(t, bundle.Args("/bin/cat"))
	e := startShim(t, b, func(o *shim.Options) { o.Stdin = true })
	c := ctx(t)
	if _, err := e.client.Start(c); err != nil {
		t.Fatal(err)
	}
	w, err := e.client.Attach(c, "")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	fmt.Fprintln(w, "through stdin")
	w.Close()
	if err := e.client.CloseStdin(c, ""); err != nil {
		t.Fatalf("CloseStdin: %v", err)
	}
	st, err := e.client.Wait(c, "")
	if err != nil || st.ExitStatus != 0 {
		t.Fatalf("Wait = %+v, %v; want cat to exit 0 at EOF", st, err)
	}
	if entries := logEntries(t, e.opts.LogPath); !hasEntry(entries, "stdout", "through stdin\n") {
		t.Fatalf("log %v lacks the line sent on stdin", entries)
	}
}

func TestSurvivesParent(t *testing.T) {
	if skipAll != "" {
		t.Skip(skipAll)
	}
	b := bundle.New(t, bundle.Args("/probe", "sleep", "1000"))
	o := options(t, b)
	t.Cleanup(func() { cleanup(t, o) })
	// The parent starts the shim, then lingers until killed.
	args := strings.Join(append([]string{shimBin, "start"}, o.Args()...), " ")
	parent := exec.Command("/bin/sh", "-c", args+" && exec sleep 1000")
	if err := parent.Start(); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(o.StateDir, shim.SocketName)
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(filepath.Join(o.StateDir, shim.RecordName)); err == nil {
			if _, err := shim.NewClient(sock).Connect(ctx(t)); err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			parent.Process.Kill()
			parent.Wait()
			t.Fatal("shim did not come up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	parent.Process.Kill()
	parent.Wait()
	c := shim.NewClient(sock)
	info, err := c.Connect(ctx(t))
	if err != nil {
		t.Fatalf("Connect after the parent died: %v", err)
	}
	if info.ID != b.ID || info.Namespace != "test" || info.ShimPid <= 0 || info.Pid <= 0 {
		t.Fatalf("Connect = %+v", info)
	}
	if _, err := c.Start(ctx(t)); err != nil {
		t.Fatalf("Start after the parent died: %v", err)
	}
	// The shim is in its own session, and the container's init is its child.
	if sid, _ := unix.Getsid(info.ShimPid); sid != info.ShimPid {
		t.Errorf("shim session = %d, want its own (%d)", sid, info.ShimPid)
	}
	if ppid := parentOf(t, info.Pid); ppid != info.ShimPid {
		t.Errorf("container init's parent = %d, want the shim %d", ppid, info.ShimPid)
	}
	if err := c.Kill(ctx(t), "", syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if st, err := c.Wait(ctx(t), ""); err != nil || st.ExitStatus != 128+9 {
		t.Fatalf("Wait = %+v, %v; want 137", st, err)
	}
}

func parentOf(t *testing.T, pid int) int {
	st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(st)[strings.LastIndexByte(string(st), ')')+2:])
	ppid, _ := strconv.Atoi(f[1])
	return ppid
}

func TestExec(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "sleep", "1000"))
	e := startShim(t, b, nil)
	c := ctx(t)
	if _, err := e.client.Exec(c, shimapi.ExecRequest{ExecID: "early", Process: json.RawMessage(`{"args":["/bin/true"],"cwd":"/"}`)}); err == nil {
		t.Fatal("Exec into a created (not started) container succeeded")
	}
	if _, err := e.client.Start(c); err != nil {
		t.Fatal(err)
	}
	proc := `{"args":["/bin/sh","-c","echo from exec; echo exec err >&2; exit 5"],"cwd":"/","user":{"uid":0,"gid":0},"env":["PATH=/bin"]}`
	st, err := e.client.Exec(c, shimapi.ExecRequest{ExecID: "x1", Process: json.RawMessage(proc)})
	if err != nil {
		t.Fatalf("Exec: %v", err)
	}
	if st.Pid <= 0 {
		t.Fatalf("Exec = %+v, want a pid", st)
	}
	st, err = e.client.Wait(c, "x1")
	if err != nil || st.Status != shimapi.StatusStopped || st.ExitStatus != 5 {
		t.Fatalf("Wait exec = %+v, %v; want exit 5", st, err)
	}
	if _, err := os.Stat(filepath.Join(e.opts.StateDir, "exec-x1.exit.json")); err != nil {
		t.Fatalf("exec exit not recorded: %v", err)
	}
	// The exec's output was held for its first attacher, and is not in
	// the container's log.
	out, err := e.client.AttachOutput(c, "x1")
	if err != nil {
		t.Fatalf("AttachOutput exec: %v", err)
	}
	got := map[int]string{}
	for {
		stream, data, err := out.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("exec output: %v", err)
		}
		got[stream] += string(data)
	}
	out.Close()
	if got[shimapi.OutputStdout] != "from exec\n" || got[shimapi.OutputStderr] != "exec err\n" {
		t.Fatalf("exec output %v, want stdout %q and stderr %q", got, "from exec\n", "exec err\n")
	}
	if hasEntry(logEntries(t, e.opts.LogPath), "stdout", "from exec\n") {
		t.Fatal("exec output in the container's log")
	}
	if _, err := e.client.Exec(c, shimapi.ExecRequest{ExecID: "x1", Process: json.RawMessage(proc)}); err == nil {
		t.Fatal("a second exec with the same id succeeded")
	}
	if _, err := e.client.Delete(c, "x1", false); err != nil {
		t.Fatalf("Delete exec: %v", err)
	}
	if _, err := e.client.State(c, "x1"); err == nil {
		t.Fatal("State of a deleted exec succeeded")
	}
	// An exec killed through the shim.
	if _, err := e.client.Exec(c, shimapi.ExecRequest{ExecID: "x2", Process: json.RawMessage(`{"args":["/probe","sleep","1000"],"cwd":"/"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := e.client.Kill(c, "x2", syscall.SIGTERM, false); err != nil {
		t.Fatalf("Kill exec: %v", err)
	}
	if st, err := e.client.Wait(c, "x2"); err != nil || st.ExitStatus != 128+int(syscall.SIGTERM) {
		t.Fatalf("Wait killed exec = %+v, %v", st, err)
	}
	pids, err := e.client.Pids(c)
	if err != nil || len(pids) != 1 {
		t.Fatalf("Pids = %v, %v; want only the init", pids, err)
	}
	if err := e.client.Pause(c); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if st, _ := e.client.State(c, ""); st.Status != shimapi.StatusPaused {
		t.Fatalf("status after Pause = %q", st.Status)
	}
	if err := e.client.Resume(c); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if data, err := e.client.Stats(c); err != nil || len(data) == 0 {
		t.Fatalf("Stats = %s, %v", data, err)
	}
	if err := e.client.Update(c, json.RawMessage(`{"pids":{"limit":100}}`)); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func TestDeleteLeavesNothing(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "sleep", "1000"))
	e := startShim(t, b, nil)
	c := ctx(t)
	if _, err := e.client.Start(c); err != nil {
		t.Fatal(err)
	}
	pid := shimPid(t, e.opts)
	if len(cgroupDirs(b.ID)) == 0 {
		t.Fatal("the container has no cgroup to check")
	}
	if _, err := e.client.Delete(c, "", false); err == nil {
		t.Fatal("Delete of a running container without force succeeded")
	}
	if err := e.client.Shutdown(c, false); err == nil {
		t.Fatal("Shutdown with a container left succeeded")
	}
	st, err := e.client.Delete(c, "", true)
	if err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if st.Status != shimapi.StatusStopped {
		t.Fatalf("Delete = %+v, want stopped", st)
	}
	waitGone(t, "shim", pid)
	if _, err := os.Stat(e.opts.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir after Delete: %v", err)
	}
	if d := cgroupDirs(b.ID); len(d) != 0 {
		t.Fatalf("cgroups left after Delete: %v", d)
	}
	rt := &ociclient.Runtime{Binary: runtimePath, Root: e.opts.RuntimeRoot}
	if _, err := rt.State(c, b.ID); err == nil {
		t.Fatal("the runtime still knows the container")
	}
}

func TestShimKilled(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "sleep", "1000"))
	e := startShim(t, b, nil)
	c := ctx(t)
	st, err := e.client.Start(c)
	if err != nil {
		t.Fatal(err)
	}
	pid := shimPid(t, e.opts)
	syscall.Kill(pid, syscall.SIGKILL)
	waitGone(t, "shim", pid)
	// Decision: the container keeps running, adopted by the next
	// subreaper or init; its exit status is lost.
	if !testproc.Alive(st.Pid) {
		t.Fatal("the container died with its shim")
	}
	found, err := shim.Discover(filepath.Dir(filepath.Dir(e.opts.StateDir)))
	if err != nil || len(found) != 1 {
		t.Fatalf("Discover = %+v, %v", found, err)
	}
	f := found[0]
	if f.Alive || f.Exit != nil || f.Options.ID != b.ID || f.ShimPid != pid {
		t.Fatalf("Discover = %+v, want a dead shim of %s without exit record", f, b.ID)
	}
	rec, err := shim.Cleanup(c, f)
	if err != nil || rec != nil {
		t.Fatalf("Cleanup = %v, %v; want no exit record (status unknown)", rec, err)
	}
	waitGone(t, "container init", st.Pid)
	if _, err := os.Stat(e.opts.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir after Cleanup: %v", err)
	}
	if d := cgroupDirs(b.ID); len(d) != 0 {
		t.Fatalf("cgroups left after Cleanup: %v", d)
	}
}

func TestRuntimeHangTimesOut(t *testing.T) {
	if skipAll != "" {
		t.Skip(skipAll)
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "hung-runtime")
	script := "#!/bin/sh\necho $$ > " + dir + "/pid\nexec sleep 1000\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	b := bundle.New(t)
	o := options(t, b)
	o.Runtime = fake
	o.Timeout = time.Second
	t.Cleanup(func() { cleanup(t, o) })
	_, err := shim.Launch(ctx(t), shimBin, o)
	if err == nil || !strings.Contains(err.Error(), "timed out") || !strings.Contains(err.Error(), "create") {
		t.Fatalf("Launch with a hung runtime = %v, want a timeout of create", err)
	}
	t.Logf("error: %v", err)
	if _, err := os.Stat(o.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir after a failed create: %v", err)
	}
	b2, _ := os.ReadFile(filepath.Join(dir, "pid"))
	if pid, _ := strconv.Atoi(strings.TrimSpace(string(b2))); pid > 0 {
		waitGone(t, "hung runtime", pid)
	}
}

// TestShimMemory reports an idle shim's memory with a running container
// (docs/design/shim.md records the figures). It measures; it never fails
// on the figures.
func TestShimMemory(t *testing.T) {
	// Two shims share the binary's text, as 100 would; sync so that the
	// freshly built binary's pages are clean page cache, not dirty.
	var e *env
	c := ctx(t)
	for i := 0; i < 2; i++ {
		b := bundle.New(t, bundle.Args("/probe", "sleep", "1000"))
		e = startShim(t, b, nil)
		if _, err := e.client.Start(c); err != nil {
			t.Fatal(err)
		}
		if _, err := e.client.State(c, ""); err != nil {
			t.Fatal(err)
		}
	}
	syscall.Sync()
	time.Sleep(500 * time.Millisecond) // let the shim go idle
	pid := shimPid(t, e.opts)
	status, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	rollup, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	for _, l := range strings.Split(string(status)+string(rollup), "\n") {
		if strings.HasPrefix(l, "VmRSS") || strings.HasPrefix(l, "Pss:") || strings.HasPrefix(l, "Threads") || strings.HasPrefix(l, "Private_Dirty") || strings.HasPrefix(l, "Anonymous") {
			t.Log(strings.Join(strings.Fields(l), " "))
		}
	}
}

func TestTerminal(t *testing.T) {
	b := bundle.New(t, bundle.Args("/bin/sh", "-c", "read line; echo got $line; exit 4"))
	b.Spec.Process.Terminal = true
	b.Write()
	e := startShim(t, b, nil)
	c := ctx(t)
	if st, err := e.client.State(c, ""); err != nil || !st.Terminal {
		t.Fatalf("State = %+v, %v; want a terminal", st, err)
	}
	if _, err := e.client.Start(c); err != nil {
		t.Fatal(err)
	}
	if err := e.client.ResizePty(c, "", 100, 40); err != nil {
		t.Fatalf("ResizePty: %v", err)
	}
	w, err := e.client.Attach(c, "")
	if err != nil {
		t.Fatalf("Attach: %v", err)
	}
	fmt.Fprint(w, "hello\n")
	w.Close()
	st, err := e.client.Wait(c, "")
	if err != nil || st.ExitStatus != 4 {
		t.Fatalf("Wait = %+v, %v; want 4", st, err)
	}
	var out strings.Builder
	for _, en := range logEntries(t, e.opts.LogPath) {
		out.WriteString(en["log"])
	}
	if !strings.Contains(out.String(), "got hello\r\n") {
		t.Fatalf("pty output %q lacks \"got hello\\r\\n\"", out.String())
	}
}
