package containers

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/testproc"
)

func TestRunRmEcho(t *testing.T) {
	e := newEnv(t)
	out, errOut, code := e.gantry("run", "--rm", "busybox", "echo", "hello from gantry")
	if code != 0 || out != "hello from gantry\n" {
		t.Fatalf("run: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	e.assertClean()
}

func TestExitCodes(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"sh", "-c", "exit 3"}, 3, ""},
		{[]string{"/etc/passwd"}, 126, "permission denied"},
		{[]string{"nonexistent-command"}, 127, "executable file not found"},
	} {
		_, errOut, code := e.gantry(append([]string{"run", "--rm", "busybox"}, tc.args...)...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errOut)
		}
		if tc.msg != "" && (!strings.Contains(errOut, tc.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0) {
			t.Errorf("%v: stderr %q, want one line containing %q", tc.args, errOut, tc.msg)
		}
	}
	e.assertClean()
}

type psEntry struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	State    string `json:"state"`
	Pid      int    `json:"pid"`
	ExitCode *int   `json:"exitCode"`
}

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

const counter = `i=0; while true; do echo line $i; i=$((i+1)); sleep 0.2; done`

func TestDetachedLifecycle(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "web", "-e", "GREETING=hi", "busybox", "sh", "-c", counter)
	if p := e.ps()["web"]; p.State != "running" {
		t.Fatalf("web is %q, want running", p.State)
	}
	if out := e.mustGantry("ps", "-q"); !strings.Contains(out, e.ps()["web"].ID[:12]) {
		t.Fatalf("ps -q does not list web: %q", out)
	}
	e.waitFor("output in the log", func() bool { return strings.Contains(e.mustGantry("logs", "web"), "line 2\n") })
	if out := e.mustGantry("logs", "--tail", "1", "web"); strings.Count(out, "\n") != 1 {
		t.Errorf("logs --tail 1: %q", out)
	}
	if out := e.mustGantry("exec", "web", "sh", "-c", "echo $GREETING from exec"); !strings.Contains(out, "hi from exec\n") {
		t.Errorf("exec output %q", out)
	}
	if _, _, code := e.gantry("exec", "web", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("exec exit 5: got %d", code)
	}
	if out := e.mustGantry("top", "web"); !strings.Contains(out, "sh -c") {
		t.Errorf("top: %q", out)
	}
	e.mustGantry("stop", "-t", "1", "web")
	p := e.ps()["web"]
	if p.State == "running" || p.ExitCode == nil || *p.ExitCode != 137 {
		t.Fatalf("after stop: %+v, want exited 137 (sh ignores SIGTERM as pid 1)", p)
	}
	_, errOut, code := e.gantry("exec", "web", "true")
	if code == 0 || !strings.Contains(errOut, "not running") || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("exec into a stopped container: exit %d, stderr %q", code, errOut)
	}
	e.mustGantry("rm", "web")
	e.assertClean()
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "dup", "busybox", "sleep", "100")
	hostDir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		msg  string
	}{
		{"duplicate name", []string{"run", "--name", "dup", "busybox", "true"}, `"dup": already in use`},
		{"unknown image", []string{"run", "--rm", "nosuchimage", "true"}, "not found"},
		{"relative -v", []string{"run", "--rm", "-v", "data:/data", "busybox", "true"}, "not absolute"},
		{"missing -v", []string{"run", "--rm", "-v", filepath.Join(hostDir, "missing") + ":/data", "busybox", "true"}, "does not exist"},
		{"invalid memory", []string{"run", "--rm", "--memory", "lots", "busybox", "true"}, "invalid --memory"},
	} {
		out, errOut, code := e.gantry(tc.args...)
		if code != 125 {
			t.Errorf("%s: exit %d, want 125 (stdout %q stderr %q)", tc.name, code, out, errOut)
		}
		if !strings.Contains(errOut, tc.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("%s: stderr %q, want one line containing %q", tc.name, errOut, tc.msg)
		}
	}
	ps := e.ps()
	if len(ps) != 1 {
		t.Errorf("containers after bad input: %v, want only dup", ps)
	}
	// A volume that exists works and is read-only when asked.
	if err := os.WriteFile(filepath.Join(hostDir, "f"), []byte("data\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := e.mustGantry("run", "--rm", "-v", hostDir+":/data:ro", "busybox", "cat", "/data/f"); out != "data\n" {
		t.Errorf("volume: %q", out)
	}
	if _, _, code := e.gantry("run", "--rm", "-v", hostDir+":/data:ro", "busybox", "touch", "/data/g"); code == 0 {
		t.Errorf("writing a read-only volume succeeded")
	}
	// :ro reaches the mounts below the host path too (docker 25's
	// recursive read-only): a tmpfs mounted below it is read-only inside.
	sub := filepath.Join(hostDir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	if _, _, code := e.gantry("run", "--rm", "-v", hostDir+":/data:ro", "busybox", "touch", "/data/sub/g"); code == 0 {
		t.Errorf("writing below a mount inside a read-only volume succeeded")
	}
	if _, err := os.Stat(filepath.Join(sub, "g")); err == nil {
		t.Errorf("%s/g exists: the container wrote below a read-only volume", sub)
	}
	if out := e.mustGantry("run", "--rm", "-v", hostDir+":/data", "busybox", "sh", "-c", "touch /data/sub/g && echo ok"); out != "ok\n" {
		t.Errorf("writing below a mount inside a read-write volume: %q", out)
	}
	e.mustGantry("rm", "-f", "dup")
	e.assertClean()
}

func TestRestartKeepsContainers(t *testing.T) {
	e := newEnv(t)
	names := []string{"a", "b", "c"}
	for _, n := range names {
		e.mustGantry("run", "-d", "--name", n, "busybox", "sh", "-c", counter)
	}
	e.mustGantry("run", "-d", "--name", "quitter", "busybox", "sh", "-c", "read x; exit 7")
	e.crash()
	// While gantryd is down: quitter exits (its stdin is /dev/null: read
	// fails at once, so it already did or does now), the others keep running.
	e.start()
	ps := e.ps()
	for _, n := range names {
		if ps[n].State != "running" {
			t.Errorf("%s after restart: %+v, want running", n, ps[n])
		}
		if out := e.mustGantry("exec", n, "echo", "alive"); !strings.Contains(out, "alive") {
			t.Errorf("exec into %s after restart: %q", n, out)
		}
	}
	e.waitFor("quitter to be reported exited", func() bool {
		p := e.ps()["quitter"]
		return p.ExitCode != nil
	})
	if p := e.ps()["quitter"]; *p.ExitCode != 7 {
		t.Errorf("quitter: exit %d, want 7", *p.ExitCode)
	}
	// Logs are continuous: the counter's lines have no gap.
	e.waitFor("more output", func() bool { return strings.Count(e.mustGantry("logs", "a"), "\n") > 5 })
	// (Exec output shares the container's log: skip it.)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(e.mustGantry("logs", "a")), "\n") {
		if l != "alive" {
			lines = append(lines, l)
		}
	}
	for i, l := range lines {
		if l != "line "+strconv.Itoa(i) {
			t.Fatalf("log of a, line %d: %q (log not continuous)", i, l)
		}
	}
	for _, n := range append(names, "quitter") {
		e.mustGantry("rm", "-f", n)
	}
	e.assertClean()
}

func TestExitWhileDaemonDown(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "x", "busybox", "sh", "-c", "sleep 100")
	id := e.ps()["x"].ID
	e.crash()
	// Kill the container's init behind gantryd's back: its shim records it.
	pidData, err := os.ReadFile(filepath.Join(e.state, "shims", "default", id, "init.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(pidData)))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the exit record", func() bool {
		_, err := os.Stat(filepath.Join(e.state, "shims", "default", id, "exit.json"))
		return err == nil
	})
	e.start()
	p := e.ps()["x"]
	if p.ExitCode == nil || *p.ExitCode != 137 {
		t.Fatalf("x after restart: %+v, want exited 137", p)
	}
	if out := strings.TrimSpace(e.mustGantry("wait", "x")); out != "137" {
		t.Errorf("wait: %q", out)
	}
	e.mustGantry("rm", "x")
	e.assertClean()
}

func TestShimKilled(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "orphan", "busybox", "sleep", "100")
	pids := shimsOf(e.dir)
	if len(pids) != 1 {
		t.Fatalf("shims: %v, want one", pids)
	}
	init := e.ps()["orphan"].Pid
	if init <= 0 {
		t.Fatalf("orphan: pid %d", init)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// gantryd notices at once and cleans up (the runtime's delete kills
	// the container): the task is gone and the container "exited", with
	// the exit kept. Until the clean-up is done it shows "stopped".
	e.waitFor("orphan cleaned up and reported exited", func() bool { return e.ps()["orphan"].State == "exited" })
	if testproc.Alive(init) {
		t.Errorf("the container's process %d is still there", init)
	}
	if p := e.ps()["orphan"]; p.ExitCode != nil {
		t.Errorf("orphan: exit code %d, want unknown", *p.ExitCode)
	}
	if out := e.mustGantry("ps", "-a"); !strings.Contains(out, "Exited (unknown)") {
		t.Errorf("ps -a does not show the unknown exit:\n%s", out)
	}
	e.mustGantry("rm", "orphan")
	e.assertClean()
	// The container's process went with it.
	if out, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(out), e.dir) {
		t.Errorf("mounts left")
	}
}

func TestRunInteractiveStdin(t *testing.T) {
	e := newEnv(t)
	cmd := exec.Command(filepath.Join(binDir, "gantry"), "--address", e.sock, "run", "-i", "--rm", "busybox", "sh", "-c", "read a; read b; echo got $a $b; exit 4")
	cmd.Stdin = strings.NewReader("one\ntwo\n")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Fatalf("run -i: %v, want exit 4", err)
	}
	if string(out) != "got one two\n" {
		t.Fatalf("run -i output %q", out)
	}
	e.assertClean()
}
