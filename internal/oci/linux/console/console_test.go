package console

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	busybox  = "/bin/busybox"
	slaveEnv = "GANTRY_CONSOLE_TEST_SLAVE"
)

// TestMain doubles as the child of TestSetupSlave: with slaveEnv set, the
// test binary makes that pty slave its terminal and execs a busybox shell
// that reports what it sees and echoes a line read from the terminal.
func TestMain(m *testing.M) {
	if p, ok := os.LookupEnv(slaveEnv); ok {
		if err := SetupSlave(p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		script := `tty; test -t 0 && test -t 1 && test -t 2 && echo all-tty; echo "sid=$(cut -d' ' -f6 /proc/self/stat) pid=$$"; read line; echo "got:$line"`
		err := syscall.Exec(busybox, []string{"sh", "-c", script}, []string{"PATH=/bin"})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func socketpair(t *testing.T) (a, b *os.File) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	a, b = os.NewFile(uintptr(fds[0]), "a"), os.NewFile(uintptr(fds[1]), "b")
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

func newPty(t *testing.T) (*os.File, string) {
	t.Helper()
	m, p, err := NewPty()
	if err != nil {
		t.Skipf("no pty available: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m, p
}

func TestNewPtyAndSetSize(t *testing.T) {
	m, p := newPty(t)
	if !strings.HasPrefix(p, "/dev/pts/") {
		t.Fatalf("slave path %q", p)
	}
	s, err := os.OpenFile(p, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("open unlocked slave: %v", err)
	}
	defer s.Close()
	if err := SetSize(m, 132, 43); err != nil {
		t.Fatal(err)
	}
	ws, err := unix.IoctlGetWinsize(int(s.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		t.Fatal(err)
	}
	if ws.Col != 132 || ws.Row != 43 {
		t.Fatalf("slave size = %dx%d, want 132x43", ws.Col, ws.Row)
	}
	if err := SetSize(m, 1<<16, 1); err == nil {
		t.Fatal("SetSize with 65536 columns succeeded")
	}
}

func TestSendRecvFd(t *testing.T) {
	m, p := newPty(t)
	a, b := socketpair(t)
	if err := SendFd(a, p, m); err != nil {
		t.Fatal(err)
	}
	got, err := RecvFd(b)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	if got.Name() != p {
		t.Errorf("received name %q, want %q", got.Name(), p)
	}
	if flags, err := unix.FcntlInt(got.Fd(), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received fd is not close-on-exec (flags %#x, %v)", flags, err)
	}
	// The received descriptor is the same terminal: a size set through it
	// shows on the original master.
	if err := SetSize(got, 90, 30); err != nil {
		t.Fatal(err)
	}
	ws, err := unix.IoctlGetWinsize(int(m.Fd()), unix.TIOCGWINSZ)
	if err != nil || ws.Col != 90 || ws.Row != 30 {
		t.Fatalf("size on the original master = %+v, %v; want 90x30", ws, err)
	}
}

func TestRecvFdClosed(t *testing.T) {
	a, b := socketpair(t)
	a.Close()
	if _, err := RecvFd(b); err == nil || !strings.Contains(err.Error(), "connection closed") {
		t.Fatalf("RecvFd on a closed peer = %v", err)
	}
}

func TestRecvFdNoRights(t *testing.T) {
	a, b := socketpair(t)
	if _, err := a.Write([]byte("just text")); err != nil {
		t.Fatal(err)
	}
	if _, err := RecvFd(b); err == nil || !strings.Contains(err.Error(), "got 0 descriptors") {
		t.Fatalf("RecvFd of a message without descriptors = %v", err)
	}
}

// DialSocket and SendFd against a listener, as the --console-socket is used.
func TestDialSocket(t *testing.T) {
	m, p := newPty(t)
	path := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := DialSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := SendFd(c, p, m); err != nil {
		t.Fatal(err)
	}
	// The receiving side of a net.UnixConn is non-blocking; RecvFd must cope.
	rf, err := conn.File()
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	got, err := RecvFd(rf)
	if err != nil {
		t.Fatal(err)
	}
	got.Close()
	if got.Name() != p {
		t.Fatalf("received name %q, want %q", got.Name(), p)
	}
	if _, err := DialSocket(filepath.Join(t.TempDir(), "missing.sock")); err == nil || !strings.Contains(err.Error(), "connect to console socket") {
		t.Fatalf("DialSocket to a missing socket = %v", err)
	}
}

// A child makes the slave its controlling terminal and standard streams; the
// master travels over a socketpair first, as it would to --console-socket.
func TestSetupSlave(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("%s not available", busybox)
	}
	m, p := newPty(t)
	a, b := socketpair(t)
	if err := SendFd(a, p, m); err != nil {
		t.Fatal(err)
	}
	master, err := RecvFd(b)
	if err != nil {
		t.Fatal(err)
	}
	defer master.Close()
	m.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{slaveEnv + "=" + p}
	var stderr strings.Builder
	cmd.Stderr = &stderr // SetupSlave replaces it; only errors before that land here
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })

	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(master)
		for sc.Scan() {
			lines <- strings.TrimRight(sc.Text(), "\r")
		}
	}()
	// A guard against a hang, not a timing assertion.
	guard := time.After(60 * time.Second)
	next := func() string {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("terminal closed early; child stderr: %s", stderr.String())
			}
			return l
		case <-guard:
			t.Fatalf("no output from the child on its terminal; stderr: %s", stderr.String())
		}
		return ""
	}
	if got := next(); got != p {
		t.Errorf("tty = %q, want %q", got, p)
	}
	if got := next(); got != "all-tty" {
		t.Errorf("stdio are not all the terminal: %q", got)
	}
	if got := next(); !strings.HasPrefix(got, "sid=") || strings.Fields(got)[0][4:] != strings.Fields(got)[1][4:] {
		t.Errorf("the shell does not lead its own session: %q", got)
	}
	if _, err := master.Write([]byte("hello\n")); err != nil {
		t.Fatal(err)
	}
	for {
		l := next()
		if l == "got:hello" {
			break
		}
		if l != "hello" { // the terminal echoes the input
			t.Fatalf("unexpected line %q", l)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v; stderr: %s", err, stderr.String())
	}
}
