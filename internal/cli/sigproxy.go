package cli

import (
	"os"
	"os/signal"
	"sync"
	"syscall"
)

// proxiedSignals are the signals a foreground `gantry run` without a
// terminal passes on to its container (docker's --sig-proxy): those a user
// or a supervisor sends to stop or poke a process. Job control (TSTP,
// TTIN, TTOU, CONT) stays with the CLI's own process; SIGCHLD, SIGPIPE,
// SIGWINCH (the terminal's size, which -t forwards as a resize) and SIGURG
// (the Go runtime's preemption) are not meant for the container.
var proxiedSignals = []os.Signal{
	syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGALRM,
}

// proxySignals passes every proxied signal the process receives to send,
// in the order they arrive, until the returned stop is called; stop
// returns once no send is in progress. While it runs, those signals no
// longer end the CLI: the caller ends when the container does.
func proxySignals(send func(syscall.Signal)) (stop func()) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, proxiedSignals...)
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case s := <-ch:
				send(s.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(done)
		wg.Wait()
	}
}
