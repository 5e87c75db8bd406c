package container

import (
	"io"
	"os"
	"time"
)

// copyTerminal connects our stdin/stdout to the pty master and returns a
// func that waits until the container's output has been copied out: the
// master reads EOF (EIO) once the last holder of the slave closes it. The
// wait is bounded, since a process that daemonized may keep the slave.
func copyTerminal(master *os.File) (drain func()) {
	done := make(chan struct{})
	go io.Copy(master, os.Stdin)
	go func() {
		io.Copy(os.Stdout, master)
		close(done)
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
}
