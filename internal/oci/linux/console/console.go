package console

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// NewPty opens a new pseudo-terminal master from /dev/ptmx of the current
// mount namespace, unlocks its slave and returns the master with the slave's
// path (/dev/pts/N). The master is close-on-exec.
func NewPty() (master *os.File, slavePath string, err error) {
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, "", fmt.Errorf("open /dev/ptmx: %w", err)
	}
	// TIOCSPTLCK with 0 is unlockpt(3).
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("unlock pty slave: %w", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		unix.Close(fd)
		return nil, "", fmt.Errorf("get pty number: %w", err)
	}
	return os.NewFile(uintptr(fd), "/dev/ptmx"), fmt.Sprintf("/dev/pts/%d", n), nil
}

// SetSize sets the window size of the terminal f (master or slave) in
// columns and rows with TIOCSWINSZ.
func SetSize(f *os.File, width, height uint) error {
	if width > 0xffff || height > 0xffff {
		return fmt.Errorf("console size %dx%d is out of range", width, height)
	}
	ws := unix.Winsize{Col: uint16(width), Row: uint16(height)}
	if err := control(f, func(fd int) error { return unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &ws) }); err != nil {
		return fmt.Errorf("set console size %dx%d: %w", width, height, err)
	}
	return nil
}

// control runs fn on the raw descriptor of f.
func control(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}

// SendFd sends f over the connected unix socket sock as an SCM_RIGHTS
// message whose payload is name (runc sends the pty master this way to the
// --console-socket, and containerd and podman expect it).
func SendFd(sock *os.File, name string, f *os.File) error {
	if len(name) > maxNameLen {
		return fmt.Errorf("send fd %q: name longer than %d bytes", name, maxNameLen)
	}
	rc, err := sock.SyscallConn()
	if err != nil {
		return fmt.Errorf("send fd %q over %s: %w", name, sock.Name(), err)
	}
	err = control(f, func(fd int) error {
		rights := unix.UnixRights(fd)
		var werr error
		if err := rc.Write(func(sfd uintptr) bool {
			werr = unix.Sendmsg(int(sfd), []byte(name), rights, nil, 0)
			return werr != unix.EAGAIN && werr != unix.EINTR
		}); err != nil {
			return err
		}
		return werr
	})
	if err != nil {
		return fmt.Errorf("send fd %q over %s: %w", name, sock.Name(), err)
	}
	return nil
}

// maxNameLen bounds the payload of SendFd and RecvFd; runc uses 4096 too.
const maxNameLen = 4096

// RecvFd receives one file descriptor sent with SendFd from the unix socket
// sock; the returned file is named by the message payload and close-on-exec.
func RecvFd(sock *os.File) (*os.File, error) {
	buf := make([]byte, maxNameLen)
	oob := make([]byte, unix.CmsgSpace(4))
	var n, oobn int
	rc, err := sock.SyscallConn()
	if err == nil {
		var rerr error
		err = rc.Read(func(sfd uintptr) bool {
			n, oobn, _, _, rerr = unix.Recvmsg(int(sfd), buf, oob, unix.MSG_CMSG_CLOEXEC)
			return rerr != unix.EAGAIN && rerr != unix.EINTR
		})
		if err == nil {
			err = rerr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("receive fd over %s: %w", sock.Name(), err)
	}
	if n == 0 && oobn == 0 {
		return nil, fmt.Errorf("receive fd over %s: connection closed", sock.Name())
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receive fd over %s: parse control message: %w", sock.Name(), err)
	}
	var fds []int
	for _, m := range msgs {
		more, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, more...)
	}
	if len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receive fd over %s: got %d descriptors, want 1", sock.Name(), len(fds))
	}
	return os.NewFile(uintptr(fds[0]), string(buf[:n])), nil
}

// DialSocket connects to the unix stream socket at path (the
// --console-socket) and returns the connection as a close-on-exec file.
func DialSocket(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	for {
		err = unix.Connect(fd, &unix.SockaddrUnix{Name: path})
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("connect to console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), path), nil
}

// SetupSlave makes the pty slave at slavePath the controlling terminal and
// the standard input, output and error of the calling process: it starts a
// new session, opens the slave, takes it as controlling terminal
// (TIOCSCTTY) and duplicates it onto descriptors 0, 1 and 2.
func SetupSlave(slavePath string) error {
	if _, err := unix.Setsid(); err != nil {
		// EPERM: already a process group leader, fine if it leads its
		// own session already.
		if sid, serr := unix.Getsid(0); serr != nil || sid != unix.Getpid() {
			return fmt.Errorf("setsid: %w", err)
		}
	}
	fd, err := unix.Open(slavePath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open console %s: %w", slavePath, err)
	}
	if fd < 3 {
		// Keep the descriptor clear of the ones it is about to replace.
		high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("dup console %s: %w", slavePath, err)
		}
		fd = high
	}
	defer unix.Close(fd)
	if err := unix.IoctlSetInt(fd, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("make %s the controlling terminal: %w", slavePath, err)
	}
	for i := 0; i < 3; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return fmt.Errorf("dup console %s onto fd %d: %w", slavePath, i, err)
		}
	}
	return nil
}
