package containers

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// ptyClient is the gantry CLI run on the slave side of a pty the test
// holds the master of, as a user at a terminal runs it.
type ptyClient struct {
	t      *testing.T
	master *os.File
	cmd    *exec.Cmd
	exited chan error // gets cmd.Wait's result once

	mu   sync.Mutex
	out  strings.Builder // everything read from the master
	mark int             // expect looks at out[mark:]
}

// startPty runs `gantry args...` with the slave of a new pty as its
// controlling terminal and stdio; ws, when set, is the terminal's size
// before the CLI starts.
func startPty(t *testing.T, e *env, ws *unix.Winsize, args ...string) *ptyClient {
	t.Helper()
	master, slave := openPty(t)
	if ws != nil {
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, ws); err != nil {
			t.Fatalf("set the client pty's size: %v", err)
		}
	}
	c := &ptyClient{t: t, master: master, exited: make(chan error, 1)}
	c.cmd = exec.Command(filepath.Join(binDir, "gantry"), append([]string{"--address", e.sock}, args...)...)
	c.cmd.Stdin, c.cmd.Stdout, c.cmd.Stderr = slave, slave, slave
	c.cmd.Env = append(os.Environ(), "GANTRY_ADDRESS=", "GANTRY_NAMESPACE=")
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	waited := make(chan struct{})
	go func() { c.exited <- c.cmd.Wait(); close(waited) }()
	t.Cleanup(func() {
		c.cmd.Process.Kill()
		<-waited
	})
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			c.mu.Lock()
			c.out.Write(buf[:n])
			c.mu.Unlock()
			if err != nil { // EIO once every slave fd is closed
				return
			}
		}
	}()
	return c
}

// expect waits until the output since the last expect matches re and
// returns the match; the next expect looks after it.
func (c *ptyClient) expect(re string) string {
	c.t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		c.mu.Lock()
		s := c.out.String()
		loc := rx.FindStringIndex(s[c.mark:])
		if loc != nil {
			m := s[c.mark+loc[0] : c.mark+loc[1]]
			c.mark += loc[1]
			c.mu.Unlock()
			return m
		}
		c.mu.Unlock()
		select {
		case err := <-c.exited:
			c.exited <- err
			c.t.Fatalf("gantry exited (%v) before %q showed on the terminal; output after the last match: %q", err, re, s[c.mark:])
		default:
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%q never showed on the terminal; output after the last match: %q", re, s[c.mark:])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// typeLine sends a line as a terminal does (Enter is a carriage return).
func (c *ptyClient) typeLine(s string) {
	c.t.Helper()
	if _, err := io.WriteString(c.master, s+"\r"); err != nil {
		c.t.Fatalf("type %q: %v", s, err)
	}
}

// wait returns the CLI's exit code.
func (c *ptyClient) wait() int {
	c.t.Helper()
	select {
	case err := <-c.exited:
		c.exited <- err
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return ee.ExitCode()
		}
		if err != nil {
			c.t.Fatalf("gantry: %v", err)
		}
		return 0
	case <-time.After(2 * time.Minute):
		c.mu.Lock()
		defer c.mu.Unlock()
		c.t.Fatalf("gantry did not exit within 2 minutes; output after the last match: %q", c.out.String()[c.mark:])
		return -1
	}
}

// TestRunInteractiveTty: `gantry run -it busybox sh` at a terminal: what
// is typed reaches the shell, its output comes back, the exit code passes
// through and the terminal leaves raw mode afterwards.
func TestRunInteractiveTty(t *testing.T) {
	e := newEnv(t)
	c := startPty(t, e, nil, "run", "-it", "--rm", "--name", "itty", "busybox", "sh")
	c.expect(`# `)
	// The client's terminal is raw while the CLI runs (no echo, no line
	// editing of its own: keys go to the container's pty).
	tio, err := unix.IoctlGetTermios(int(c.master.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&(unix.ECHO|unix.ICANON) != 0 {
		t.Errorf("client terminal not in raw mode while attached: lflag %#x", tio.Lflag)
	}
	c.typeLine("echo $((6*7))")
	c.expect(`\r?\n42\r?\n`)
	c.typeLine("exit 3")
	if code := c.wait(); code != 3 {
		t.Errorf("gantry run -it exited %d, want the shell's 3", code)
	}
	tio, err = unix.IoctlGetTermios(int(c.master.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if tio.Lflag&(unix.ECHO|unix.ICANON) != unix.ECHO|unix.ICANON {
		t.Errorf("client terminal not restored after exit: lflag %#x", tio.Lflag)
	}
	e.assertClean()
}

// TestExecInteractiveTty: `gantry exec -it CTR sh` at a terminal of a
// given size: the exec has a pty of its own of that size, the exit code
// passes through, and no process of the exec is left in the container.
func TestExecInteractiveTty(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "c", "busybox", "sh", "-c", "while true; do sleep 1; done")
	c := startPty(t, e, &unix.Winsize{Row: 37, Col: 101}, "exec", "-it", "c", "sh")
	c.expect(`# `)
	c.typeLine("tty")
	c.expect(`\n/dev/pts/[0-9]+\r?\n`)
	// The CLI forwards the terminal's size at start (resize_test.go: and on every change).
	c.typeLine("echo size=$(stty size)")
	if got := c.expect(`\nsize=[0-9]+ [0-9]+`); got != "\nsize=37 101" {
		t.Errorf("stty size in the exec = %q, want the client terminal's 37 rows, 101 columns", strings.TrimPrefix(got, "\n"))
	}
	// While it runs, the exec's shell is one of the container's processes.
	if top := e.mustGantry("top", "c"); !hasProcess(top, "sh") {
		t.Errorf("gantry top does not list the exec's shell while it runs:\n%s", top)
	}
	c.typeLine("exit 5")
	if code := c.wait(); code != 5 {
		t.Errorf("gantry exec -it exited %d, want the shell's 5", code)
	}
	if top := e.mustGantry("top", "c"); hasProcess(top, "sh") {
		t.Errorf("the exec's shell is still in the container after it exited:\n%s", top)
	}
	// The container itself runs on.
	if out := e.mustGantry("exec", "c", "echo", "alive"); out != "alive\n" {
		t.Errorf("exec after the interactive one: %q", out)
	}
	e.mustGantry("rm", "-f", "c")
	e.assertClean()
}

// hasProcess reports whether `gantry top` output lists a process whose
// command line is exactly cmd.
func hasProcess(top, cmd string) bool {
	for _, line := range strings.Split(top, "\n")[1:] {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.Join(f[1:], " ") == cmd {
			return true
		}
	}
	return false
}

// TestExecInteractivePipe: `gantry exec -i CTR cat` with stdin a pipe and
// no terminal: the input comes back and EOF on stdin ends the exec.
func TestExecInteractivePipe(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "c", "busybox", "sh", "-c", "while true; do sleep 1; done")
	cmd := exec.Command(filepath.Join(binDir, "gantry"), "--address", e.sock, "exec", "-i", "c", "cat")
	cmd.Env = append(os.Environ(), "GANTRY_ADDRESS=", "GANTRY_NAMESPACE=")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		exited <- <-exited
	})
	input := "first line\nsecond line\n" + strings.Repeat("x", 100000) + "\nlast, without a newline"
	if _, err := io.WriteString(stdin, input); err != nil {
		t.Fatalf("write to gantry exec -i: %v", err)
	}
	if err := stdin.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		exited <- err
		if err != nil {
			t.Fatalf("gantry exec -i cat: %v\nstderr: %s", err, errOut.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("gantry exec -i cat did not end within 2 minutes of EOF on its stdin")
	}
	if out.String() != input {
		t.Errorf("gantry exec -i cat gave back %d bytes, want the %d written (head %q)", out.Len(), len(input), head(out.String(), 80))
	}
	if top := e.mustGantry("top", "c"); hasProcess(top, "cat") {
		t.Errorf("cat is still in the container after the exec ended:\n%s", top)
	}
	e.mustGantry("rm", "-f", "c")
	e.assertClean()
}

func head(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
