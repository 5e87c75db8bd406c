package containers

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/test/ptytest"
)

// openPty returns a new pty's master and slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	return ptytest.Open(t)
}

// TestRunTtyPromptWithoutNewline: output without a newline reaches
// `gantry run -t` while the container still runs (it waits for a file the
// test creates only after seeing the text).
func TestRunTtyPromptWithoutNewline(t *testing.T) {
	e := newEnv(t)
	master, slave := openPty(t)
	cmd := exec.Command(filepath.Join(binDir, "gantry"), "--address", e.sock, "run", "-t", "--rm", "--name", "prompt", "busybox",
		"sh", "-c", `printf "no newline"; while [ ! -e /tmp/go ]; do sleep 1; done; exit 3`)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.Env = append(os.Environ(), "GANTRY_ADDRESS=", "GANTRY_NAMESPACE=")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	exited := make(chan error, 1)
	waited := make(chan struct{})
	go func() { exited <- cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-waited
	})

	var mu sync.Mutex
	var got strings.Builder
	seen := make(chan struct{})
	go func() {
		buf := make([]byte, 4096)
		var once sync.Once
		for {
			n, err := master.Read(buf)
			mu.Lock()
			got.Write(buf[:n])
			has := strings.Contains(got.String(), "no newline")
			mu.Unlock()
			if has {
				once.Do(func() { close(seen) })
			}
			if err != nil {
				return
			}
		}
	}()
	select {
	case <-seen:
	case err := <-exited:
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("gantry run -t exited (%v) before the container's output showed; got %q", err, got.String())
	case <-time.After(2 * time.Minute):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("no \"no newline\" on the pty after 2 minutes; got %q", got.String())
	}
	// The container is still waiting for /tmp/go: let it finish.
	e.mustGantry("exec", "prompt", "touch", "/tmp/go")
	select {
	case err := <-exited:
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
			t.Fatalf("gantry run -t: %v, want exit 3", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("gantry run -t did not end after the container was released")
	}
}

// TestExecOutputIsItsOwn: an exec's output goes to `gantry exec`, stdout and
// stderr apart, and not into the container's log, which keeps the
// container's own output.
func TestExecOutputIsItsOwn(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "c", "busybox", "sh", "-c", "echo from-container; while true; do sleep 1; done")
	deadline := time.Now().Add(2 * time.Minute)
	for !strings.Contains(e.mustGantry("logs", "c"), "from-container") {
		if time.Now().After(deadline) {
			t.Fatalf("container output never reached the log: %q", e.mustGantry("logs", "c"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	out, errOut, code := e.gantry("exec", "c", "sh", "-c", "echo from-exec; echo exec-err >&2")
	if code != 0 || out != "from-exec\n" || errOut != "exec-err\n" {
		t.Fatalf("exec: exit %d, stdout %q, stderr %q; want 0, %q, %q", code, out, errOut, "from-exec\n", "exec-err\n")
	}
	logs := e.mustGantry("logs", "c")
	if strings.Contains(logs, "from-exec") || strings.Contains(logs, "exec-err") {
		t.Errorf("exec output in the container's log: %q", logs)
	}
	if !strings.Contains(logs, "from-container") {
		t.Errorf("container output missing from its log: %q", logs)
	}
}

// TestExecUser: exec -u runs as the user the container's /etc/passwd
// names; a user it does not name is refused with one clear line (its
// prefix not repeated).
func TestExecUser(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "c", "busybox", "sleep", "1000")
	if out := e.mustGantry("exec", "-u", "nobody", "c", "id", "-u"); strings.TrimSpace(out) != "65534" {
		t.Errorf("exec -u nobody: id -u says %q, want 65534", out)
	}
	_, errOut, code := e.gantry("exec", "-u", "no-such-user", "c", "id")
	if code == 0 || strings.Contains(errOut, `user "no-such-user": user "no-such-user"`) || !strings.Contains(errOut, `no user "no-such-user" in the image's /etc/passwd`) {
		t.Errorf("exec -u no-such-user: exit %d, stderr %q; want one failure line naming the user", code, errOut)
	}
}
