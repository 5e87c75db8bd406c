package container

import (
	"fmt"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// execBootstrap is a started C bootstrap process of an exec, waiting for
// its bootstrap message on sock.
type execBootstrap struct {
	pid  int      // the bootstrap, our child until wait
	sock *os.File // our end of the socket
	keep []int    // its fds to keep: preserved, the socket, extra
}

type startedBootstrap struct {
	b   *execBootstrap
	err error
}

// startExecBootstrap starts the bootstrap process from the protected
// binary, with stdio, the preserveFDs fds from 3 up, the socket, and extra
// (numbered by extraFD) as its fds.
func startExecBootstrap(preserveFDs int, extra ...*os.File) (*execBootstrap, error) {
	self, err := protectedSelf()
	if err != nil {
		return nil, err
	}
	defer self.Close()
	parentSock, childSock, err := socketPair("exec-parent", "exec-child")
	if err != nil {
		return nil, err
	}
	defer childSock.Close()
	files := newChildFiles(preserveFDs)
	sockFD := files.add(childSock)
	for _, f := range extra {
		files.add(f)
	}
	// syscall.ForkExec, not os/exec: os.StartProcess probes pidfd support
	// on its first use with a vfork of its own (~0.1-0.2 ms of every
	// exec), and the bootstrap needs none of what os/exec adds.
	fds := []uintptr{os.Stdin.Fd(), os.Stdout.Fd(), os.Stderr.Fd()}
	for _, f := range files.files {
		fds = append(fds, f.Fd())
	}
	pid, err := syscall.ForkExec(selfPath(self), []string{"gantry-oci", "init"}, &syscall.ProcAttr{
		Env:   initEnv(sockFD),
		Files: fds,
	})
	runtime.KeepAlive(files)
	runtime.KeepAlive(self)
	if err != nil {
		parentSock.Close()
		return nil, fmt.Errorf("start exec bootstrap: %w", err)
	}
	return &execBootstrap{pid: pid, sock: parentSock, keep: files.keep()}, nil
}

// extraFD is the fd number, in the bootstrap, of the i-th extra file of
// startExecBootstrap.
func extraFD(preserveFDs, i int) int { return 3 + preserveFDs + 1 + i }

// abandon kills a bootstrap that was sent nothing and reaps it.
func (b *execBootstrap) abandon() {
	b.kill()
	b.wait()
	b.sock.Close()
}

// kill sends the bootstrap SIGKILL (until it is reaped).
func (b *execBootstrap) kill() {
	if b.pid > 0 {
		unix.Kill(b.pid, unix.SIGKILL)
	}
}

// wait reaps the bootstrap; the error says how it ended unless it exited
// with 0, in os/exec's words ("exit status 1", "signal: killed"). A second
// wait returns nil.
func (b *execBootstrap) wait() error {
	if b.pid <= 0 {
		return nil
	}
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(b.pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		b.pid = 0
		if err != nil {
			return fmt.Errorf("wait: %w", err)
		}
		break
	}
	switch {
	case ws.Exited() && ws.ExitStatus() == 0:
		return nil
	case ws.Exited():
		return fmt.Errorf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return fmt.Errorf("signal: %v", ws.Signal())
	}
	return fmt.Errorf("wait status %#x", uint32(ws))
}
