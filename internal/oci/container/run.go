package container

import (
	"context"
	"fmt"
	"os"
	"os/signal"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/oci/linux/console"
)

// Run creates and starts a container. Detached, it returns once the
// container runs. In the foreground it forwards signals to the container's
// init, copies the terminal if there is one, waits for the init to exit,
// deletes the container and returns the init's exit status (128+n for a
// signal n), so that the caller can exit with it.
func (r *Runtime) Run(ctx context.Context, o CreateOptions, detach bool) (int, error) {
	var consoleLocal *os.File
	if !detach && o.ConsoleSocket == "" {
		// a terminal without a console socket: receive the pty ourselves
		local, remote, err := socketPair("console-local", "console-remote")
		if err != nil {
			return -1, err
		}
		consoleLocal = local
		defer consoleLocal.Close()
		defer remote.Close()
		o.consoleConn = remote
	}
	// Catch signals before the container exists, so none is lost: the
	// set-up (a round trip per signal to the Go runtime's signal-mask
	// thread, about 1 ms in all) runs while the config is read. As in
	// Exec, the signals that would end or stop gantry-oci
	// (execFirstSignals) are enabled before anything is made; the others,
	// which a Go program ignores until then, right after, while the
	// container is created, and they are enabled before it starts, so
	// that everything from "start" on is forwarded as before. The
	// handlers are not reset when Run returns (signal.Stop costs as much
	// again): gantry-oci exits then.
	sigs := make(chan os.Signal, 32)
	allNotified := make(chan struct{})
	if detach {
		close(allNotified)
	} else {
		notified := make(chan struct{})
		go func() {
			signal.Notify(sigs, execFirstSignals...)
			close(notified)
			signal.Notify(sigs)
			close(allNotified)
		}()
		o.beforeReserve = func() { <-notified }
	}
	c, err := r.Create(ctx, o)
	if err != nil {
		return -1, err
	}
	var master *os.File
	if consoleLocal != nil && c.Spec.Process != nil && c.Spec.Process.Terminal {
		master, err = console.RecvFd(consoleLocal)
		if err != nil {
			r.Delete(ctx, o.ID, true)
			return -1, fmt.Errorf("receive pty master: %w", err)
		}
		defer master.Close()
	}
	<-allNotified
	tracef("run: all signals set")
	if err := r.start(ctx, o.ID, c); err != nil {
		r.Delete(ctx, o.ID, true)
		return -1, err
	}
	tracef("run: started")
	if detach {
		return 0, nil
	}
	drain := func() {}
	if master != nil {
		restore := rawTerminal(os.Stdin)
		defer restore()
		resize(master)
		drain = copyTerminal(master)
	}
	code, err := waitForwarding(c.Pid, sigs, master)
	drain()
	if err != nil {
		return code, err
	}
	tracef("run: init exited")
	if err := r.delete(ctx, o.ID, true, c); err != nil {
		return code, err
	}
	tracef("run: deleted")
	return code, nil
}

func resize(master *os.File) {
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err != nil {
		return
	}
	unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
}

func rawTerminal(f *os.File) func() {
	old, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		return func() {}
	}
	raw := *old
	raw.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
	raw.Oflag &^= unix.OPOST
	raw.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
	raw.Cflag &^= unix.CSIZE | unix.PARENB
	raw.Cflag |= unix.CS8
	raw.Cc[unix.VMIN] = 1
	raw.Cc[unix.VTIME] = 0
	unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, &raw)
	return func() { unix.IoctlSetTermios(int(f.Fd()), unix.TCSETS, old) }
}
