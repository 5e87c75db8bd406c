package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/bundle"
	"github.com/gantry-project/gantry/test/probe/report"
)

// consoleReceiver is the test's end of a --console-socket, as containerd
// runs one: it accepts one connection, receives the pty master over
// SCM_RIGHTS and reads from it until every peer of the pty is closed.
type consoleReceiver struct {
	Path string
	ln   *net.UnixListener
	done chan consoleResult

	mu     sync.Mutex
	master *os.File
}

type consoleResult struct {
	out []byte
	err error
}

// newConsoleSocket listens on a new unix socket in a temp dir of t.
func newConsoleSocket(t testing.TB) *consoleReceiver {
	t.Helper()
	path := filepath.Join(t.TempDir(), "console.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatalf("listen on %s: %v", path, err)
	}
	c := &consoleReceiver{Path: path, ln: ln, done: make(chan consoleResult, 1)}
	t.Cleanup(func() {
		ln.Close()
		c.mu.Lock()
		if c.master != nil {
			c.master.Close()
		}
		c.mu.Unlock()
	})
	go func() {
		out, err := c.receive()
		c.done <- consoleResult{out, err}
	}()
	return c
}

func (c *consoleReceiver) receive() ([]byte, error) {
	conn, err := c.ln.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("accept: %w", err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4*4))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("receive pty master: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("parse control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		f, err := unix.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, f...)
		}
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("received %d fds, want one pty master", len(fds))
	}
	if _, err := unix.IoctlGetUint32(fds[0], unix.TIOCGPTN); err != nil {
		unix.Close(fds[0])
		return nil, fmt.Errorf("received fd is not a pty master: %w", err)
	}
	// Non-blocking, so that closing it at the end of the test ends a read
	// that would otherwise wait for a peer that never comes.
	unix.SetNonblock(fds[0], true)
	master := os.NewFile(uintptr(fds[0]), "pty-master")
	c.mu.Lock()
	c.master = master
	c.mu.Unlock()
	defer master.Close()
	return readPty(master), nil
}

// readPty reads master until EIO (every peer closed).
func readPty(master *os.File) []byte {
	var out bytes.Buffer
	buf := make([]byte, 4096)
	for {
		n, err := master.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			return out.Bytes()
		}
	}
}

// Output waits for what the pty carried (carriage returns removed).
func (c *consoleReceiver) Output(t testing.TB) string {
	t.Helper()
	select {
	case r := <-c.done:
		if r.err != nil {
			t.Fatalf("console socket: %v", r.err)
		}
		return strings.ReplaceAll(string(r.out), "\r", "")
	case <-time.After(commandTimeout):
		t.Fatalf("console socket: no pty master or no end of output after %v", commandTimeout)
	}
	return ""
}

// openPTY opens a new pseudo-terminal pair through the ptmx of the devpts
// mounted at /dev/pts.
func openPTY(t testing.TB) (master, peer *os.File) {
	t.Helper()
	var fd int
	var err error
	for _, p := range []string{"/dev/pts/ptmx", "/dev/ptmx"} {
		if fd, err = unix.Open(p, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("open ptmx: %v", err)
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		t.Fatalf("unlock pty: %v", err)
	}
	pfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		master.Close()
		t.Fatalf("open pty peer: %v", errno)
	}
	return master, os.NewFile(pfd, "pty-peer")
}

// inTerminal is a runCmd setup that runs the runtime as the leader of a new
// session whose controlling terminal and stdio are the peer of a new pty;
// the returned channel yields everything written to the terminal.
func inTerminal(t testing.TB) (func(*exec.Cmd) func(), <-chan string) {
	master, peer := openPTY(t)
	out := make(chan string, 1)
	setup := func(cmd *exec.Cmd) func() {
		cmd.Stdin, cmd.Stdout, cmd.Stderr = peer, peer, peer
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
		return func() {
			peer.Close()
			go func() {
				defer master.Close()
				out <- strings.ReplaceAll(string(readPty(master)), "\r", "")
			}()
		}
	}
	return setup, out
}

func checkTTYReport(t *testing.T, out string) {
	t.Helper()
	r, err := report.Parse([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	for fd, tty := range r.TTY {
		if !tty.IsTTY || !strings.HasPrefix(tty.Name, "/dev/pts/") {
			t.Errorf("fd %d: %+v, want a tty under /dev/pts", fd, tty)
		}
	}
	if v, _ := r.Getenv("TERM"); v == "" {
		t.Errorf("TERM is unset in a terminal process: %q", r.Env)
	}
}

func terminal(s *specs.Spec) { s.Process.Terminal = true }

func TestRunConsoleSocket(t *testing.T) {
	sock := newConsoleSocket(t)
	b := bundle.New(t, terminal)
	_, stderr, code := Run(t, "run", "--detach", "--console-socket", sock.Path, "--bundle", b.Dir, b.ID)
	if code != 0 {
		t.Fatalf("run --detach --console-socket: exit %d: %s", code, stderr)
	}
	checkTTYReport(t, sock.Output(t))
	WaitStatus(t, b.ID, "stopped")
}

func TestRunConsoleSocketForeground(t *testing.T) {
	skipIfRunc(t, "refuses --console-socket without --detach")
	sock := newConsoleSocket(t)
	b := bundle.New(t, terminal, bundle.Args("/bin/sh", "-c", "/probe report; exit 3"))
	_, stderr, code := Run(t, "run", "--console-socket", sock.Path, "--bundle", b.Dir, b.ID)
	if code != 3 {
		t.Fatalf("run --console-socket of a process exiting 3: exit %d: %s", code, stderr)
	}
	checkTTYReport(t, sock.Output(t))
}

func TestCreateConsoleSocket(t *testing.T) {
	sock := newConsoleSocket(t)
	b := bundle.New(t, terminal, bundle.Args("/bin/sh", "-c", "tty; echo hello from the console"))
	mustRun(t, "create", "--console-socket", sock.Path, "--bundle", b.Dir, b.ID)
	mustRun(t, "start", b.ID)
	out := sock.Output(t)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "/dev/") || lines[1] != "hello from the console" {
		t.Errorf("console output %q, want a tty name and the greeting", out)
	}
	WaitStatus(t, b.ID, "stopped")
}

func TestConsoleSocketBadInput(t *testing.T) {
	for _, tt := range []struct {
		name     string
		terminal bool
		socket   string
	}{
		{"terminal without socket", true, ""},
		{"socket does not exist", true, "/nonexistent/gantry-console.sock"},
		{"socket without terminal", false, "valid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := bundle.New(t, func(s *specs.Spec) { s.Process.Terminal = tt.terminal })
			args := []string{"create", "--bundle", b.Dir}
			switch tt.socket {
			case "":
			case "valid":
				args = append(args, "--console-socket", newConsoleSocket(t).Path)
			default:
				args = append(args, "--console-socket", tt.socket)
			}
			_, stderr, code := Run(t, append(args, b.ID)...)
			if code == 0 {
				t.Fatalf("exit 0, want an error")
			}
			checkOneErrorLine(t, stderr)
			checkNothingLeft(t, b.ID)
		})
	}
}

func TestExecTTYConsoleSocket(t *testing.T) {
	b, s := startSleeper(t)
	// The container has no terminal: an exec'd terminal must not become
	// its /dev/console.
	console, _, _ := Run(t, "exec", b.ID, "/probe", "stat", "/dev/console")
	for i := 0; i < 2; i++ {
		sock := newConsoleSocket(t)
		pidFile := filepath.Join(t.TempDir(), "pid")
		_, stderr, code := Run(t, "exec", "-d", "-t", "--console-socket", sock.Path, "--pid-file", pidFile, b.ID, "/probe", "report")
		if code != 0 {
			t.Fatalf("exec %d: exec -d -t --console-socket: exit %d: %s", i, code, stderr)
		}
		readPidFile(t, pidFile)
		checkTTYReport(t, sock.Output(t))
	}
	if now, _, _ := Run(t, "exec", b.ID, "/probe", "stat", "/dev/console"); now != console {
		t.Errorf("the container's /dev/console changed after exec -t: %q, was %q", now, console)
	}
	checkUnchanged(t, b.ID, s, "running")
}

func TestExecTTYConsoleSocketForeground(t *testing.T) {
	skipIfRunc(t, "refuses --console-socket without --detach")
	b, s := startSleeper(t)
	for i := 0; i < 2; i++ {
		sock := newConsoleSocket(t)
		_, stderr, code := Run(t, "exec", "-t", "--console-socket", sock.Path, b.ID, "/bin/sh", "-c", "echo hi; exit 5")
		if code != 5 {
			// Never read the output here: the pty may never be opened.
			t.Fatalf("exec %d: exec -t of a process exiting 5: exit status %d: %s", i, code, stderr)
		}
		if out := sock.Output(t); strings.TrimSpace(out) != "hi" {
			t.Errorf("exec %d: console output %q, want hi", i, out)
		}
	}
	checkUnchanged(t, b.ID, s, "running")
}

func TestExecTTYFromTerminal(t *testing.T) {
	b, s := startSleeper(t)
	setup, out := inTerminal(t)
	_, _, code := runCmd(t, setup, "exec", "-t", b.ID, "/probe", "report")
	if code != 0 {
		t.Fatalf("exec -t in a terminal: exit %d", code)
	}
	select {
	case o := <-out:
		checkTTYReport(t, o)
	case <-time.After(commandTimeout):
		t.Fatalf("no end of the terminal's output")
	}
	// Detached with a terminal needs a console socket.
	_, stderr, code := Run(t, "exec", "-t", "-d", b.ID, "/bin/true")
	if code == 0 {
		t.Errorf("exec -t -d without --console-socket: exit 0, want an error")
	}
	checkOneErrorLine(t, stderr)
	checkUnchanged(t, b.ID, s, "running")
}

func TestRunTerminalFromTerminal(t *testing.T) {
	b := bundle.New(t, terminal)
	setup, out := inTerminal(t)
	_, _, code := runCmd(t, setup, "run", "--bundle", b.Dir, b.ID)
	if code != 0 {
		t.Fatalf("run of a terminal container in a terminal: exit %d", code)
	}
	select {
	case o := <-out:
		checkTTYReport(t, o)
	case <-time.After(commandTimeout):
		t.Fatalf("no end of the terminal's output")
	}
}
