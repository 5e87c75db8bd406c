package clients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a new pseudo-terminal pair. It uses the ptmx of the devpts
// instance mounted at /dev/pts (the /dev/ptmx device node may belong to
// another instance) and opens the peer through TIOCGPTPEER, so no path of
// the peer is needed.
func openPTY() (master, peer *os.File, err error) {
	var fd int
	for _, p := range []string{"/dev/pts/ptmx", "/dev/ptmx"} {
		fd, err = unix.Open(p, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err == nil {
			break
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("open ptmx: %w", err)
	}
	master = os.NewFile(uintptr(fd), "ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlock pty: %w", err)
	}
	pfd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC))
	if errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("open pty peer: %w", errno)
	}
	return master, os.NewFile(pfd, "pty-peer"), nil
}

// runInTerminal runs name with args as the leader of a new session whose
// controlling terminal (and stdin, stdout, stderr) is a new pty, and
// returns everything written to the terminal (carriage returns removed)
// with the exit code. Nothing is typed on the terminal.
func runInTerminal(t testing.TB, env []string, name string, args ...string) result {
	t.Helper()
	master, peer, err := openPTY()
	if err != nil {
		t.Fatalf("allocate a terminal: %v", err)
	}
	defer master.Close()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = peer, peer, peer
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	r := result{args: append([]string{filepath.Base(name)}, args...)}
	if err := cmd.Start(); err != nil {
		peer.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	peer.Close()
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			out.Write(buf[:n])
			if err != nil {
				return // EIO once every peer descriptor is closed
			}
		}
	}()
	waitErr := cmd.Wait()
	var exitErr *exec.ExitError
	switch {
	case waitErr == nil:
	case errors.As(waitErr, &exitErr):
		r.code = exitErr.ExitCode()
	default:
		r.code = -1
	}
	if ctx.Err() != nil {
		t.Errorf("%s: killed after %v", strings.Join(r.args, " "), commandTimeout)
		r.code = -1
	}
	// A detached grandchild may still hold the terminal; the output that
	// matters was written before the client exited.
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		master.Close()
		<-done
	}
	r.stdout = strings.ReplaceAll(out.String(), "\r", "")
	t.Logf("%s (in a terminal): exit %d", strings.Join(r.args, " "), r.code)
	return r
}
