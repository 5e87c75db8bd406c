package container

import (
	"fmt"
	"os"
	"os/exec"
)

// execBootstrap is a started C bootstrap process of an exec, waiting for
// its bootstrap message on sock.
type execBootstrap struct {
	cmd  *exec.Cmd
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
	cmd := &exec.Cmd{
		Path:       selfPath(self),
		Args:       []string{"gantry-oci", "init"},
		Env:        initEnv(sockFD),
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: files.files,
	}
	if err := cmd.Start(); err != nil {
		parentSock.Close()
		return nil, fmt.Errorf("start exec bootstrap: %w", err)
	}
	return &execBootstrap{cmd: cmd, sock: parentSock, keep: files.keep()}, nil
}

// extraFD is the fd number, in the bootstrap, of the i-th extra file of
// startExecBootstrap.
func extraFD(preserveFDs, i int) int { return 3 + preserveFDs + 1 + i }

// abandon kills a bootstrap that was sent nothing and reaps it.
func (b *execBootstrap) abandon() {
	b.cmd.Process.Kill()
	b.cmd.Wait()
	b.sock.Close()
}
