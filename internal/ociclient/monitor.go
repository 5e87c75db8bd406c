package ociclient

import (
	"errors"
	"os/exec"
	"syscall"
)

// Monitor starts runtime processes and collects their exit status. The
// default, used when Runtime.Monitor is nil, is exec.Cmd's own Start and
// Wait. A process that reaps every child (the shim, a child subreaper that
// calls wait4(-1)) would race exec.Cmd.Wait for the status, so it passes a
// Monitor that registers the pid before the child can exit and hands the
// status over from its reaper. Start is called once per command, Wait once
// with the channel Start returned.
type Monitor interface {
	Start(cmd *exec.Cmd) (<-chan int, error)
	Wait(cmd *exec.Cmd, ch <-chan int) (int, error)
}

// defaultMonitor uses exec.Cmd directly.
type defaultMonitor struct{}

func (defaultMonitor) Start(cmd *exec.Cmd) (<-chan int, error) {
	return nil, cmd.Start()
}

func (defaultMonitor) Wait(cmd *exec.Cmd, _ <-chan int) (int, error) {
	err := cmd.Wait()
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ExitCode(ee.Sys().(syscall.WaitStatus)), nil
	}
	return -1, err
}

// ExitCode turns a wait status into a shell-style code: the exit status, or
// 128+n for a death by signal n.
func ExitCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
