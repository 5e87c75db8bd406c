package cli

import (
	"context"
	"os"
	"os/signal"
	"sync"

	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// terminalFd returns the descriptor of the client's terminal whose size
// the container's pty follows: stdout if it is a terminal (as docker),
// else stdin.
func (a *app) terminalFd() (int, bool) {
	for _, s := range []any{a.stdio.Out, a.stdio.In} {
		if f, ok := s.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
			return int(f.Fd()), true
		}
	}
	return 0, false
}

// forwardResize gives the size of the terminal fd to resize now and again
// at every SIGWINCH (the kernel sends it to the terminal's foreground
// process group when the window changes), until the returned stop is
// called. A size equal to the last one sent, or 0x0 (a terminal whose
// size was never set), is not sent. stop cancels a resize in flight and returns once none can start
// any more. Failed resizes are ignored: the session goes on at the old
// size, and one that fails because the process just exited is expected.
func forwardResize(ctx context.Context, fd int, resize func(ctx context.Context, width, height uint32) error) (stop func()) {
	// One pending signal is enough: each handling reads the current size.
	winch := make(chan os.Signal, 1)
	// Notify before the first read: a change after the read is signalled.
	signal.Notify(winch, unix.SIGWINCH)
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var last *unix.Winsize
		send := func() {
			ws, err := unix.IoctlGetWinsize(fd, unix.TIOCGWINSZ)
			if err != nil || (ws.Row == 0 && ws.Col == 0) || (last != nil && ws.Row == last.Row && ws.Col == last.Col) {
				return
			}
			if resize(ctx, uint32(ws.Col), uint32(ws.Row)) == nil {
				last = ws
			}
		}
		send()
		for {
			select {
			case <-winch:
				send()
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() {
		signal.Stop(winch)
		cancel()
		wg.Wait()
	}
}
