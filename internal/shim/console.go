package shim

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// consoleSocket is a listening unix socket on which the runtime sends the
// pty master of a process whose spec asks for a terminal
// (--console-socket, one SCM_RIGHTS message).
type consoleSocket struct {
	l    *net.UnixListener
	path string
}

// newConsoleSocket listens on name in the current directory (the shim's
// state directory: relative names keep long state paths under the 108-byte
// sun_path limit) and returns it with the path to give to the runtime.
func newConsoleSocket(dir, name string) (*consoleSocket, error) {
	os.Remove(name)
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: name, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen on console socket: %w", err)
	}
	l.SetUnlinkOnClose(true)
	os.Chmod(name, 0o600)
	path := filepath.Join(dir, name)
	if len(path) >= 100 {
		path = name // the runtime shares the shim's working directory
	}
	return &consoleSocket{l: l, path: path}, nil
}

// receive waits (up to timeout) for the runtime's connection and returns
// the pty master.
func (c *consoleSocket) receive(timeout time.Duration) (*os.File, error) {
	c.l.SetDeadline(time.Now().Add(timeout))
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket: accept: %w", err)
	}
	defer conn.Close()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	conn.SetDeadline(time.Now().Add(timeout))
	_, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("console socket: receive: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) == 0 {
		return nil, fmt.Errorf("console socket: no fd in the message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) == 0 {
		return nil, fmt.Errorf("console socket: no fd in the message")
	}
	for _, fd := range fds[1:] {
		unix.Close(fd)
	}
	unix.CloseOnExec(fds[0])
	return os.NewFile(uintptr(fds[0]), "pty-master"), nil
}

func (c *consoleSocket) close() { c.l.Close() }

// resize sets the window size of a pty master.
func resize(master *os.File, width, height uint16) error {
	ws := &unix.Winsize{Col: width, Row: height}
	if err := unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws); err != nil {
		return fmt.Errorf("resize pty: %w", err)
	}
	return nil
}
