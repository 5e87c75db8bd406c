package containers

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestTtyFollowsTerminalResize: `gantry exec -it` and `gantry run -it` at
// a terminal of 37x101 give the shell a pty of that size; when the
// terminal is resized to 50x132 (the kernel sends SIGWINCH to the CLI,
// the foreground process group of its controlling terminal), the
// container's pty follows.
func TestTtyFollowsTerminalResize(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "c", "busybox", "sh", "-c", "while true; do sleep 1; done")
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"exec", []string{"exec", "-it", "c", "sh"}},
		{"run", []string{"run", "-it", "--rm", "--name", "r", "busybox", "sh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := startPty(t, e, &unix.Winsize{Row: 37, Col: 101}, tc.args...)
			c.expect(`# `)
			c.typeLine("echo size=$(stty size)")
			if got := c.expect(`\nsize=[0-9]+ [0-9]+`); got != "\nsize=37 101" {
				t.Errorf("stty size at start = %q, want the client terminal's 37 rows, 101 columns", strings.TrimPrefix(got, "\n"))
			}
			if err := unix.IoctlSetWinsize(int(c.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 132}); err != nil {
				t.Fatalf("resize the client pty: %v", err)
			}
			// The resize travels CLI -> gantryd -> shim asynchronously: ask
			// until the shell sees it (the deadline is a hang guard).
			deadline := time.Now().Add(2 * time.Minute)
			var got string
			for {
				c.typeLine("echo size=$(stty size)")
				got = strings.TrimPrefix(c.expect(`\nsize=[0-9]+ [0-9]+`), "\n")
				if got == "size=50 132" || time.Now().After(deadline) {
					break
				}
				time.Sleep(100 * time.Millisecond)
			}
			if got != "size=50 132" {
				t.Fatalf("stty size after the client terminal became 50x132 = %q, want size=50 132", got)
			}
			c.typeLine("exit 4")
			if code := c.wait(); code != 4 {
				t.Errorf("gantry %s exited %d, want the shell's 4", tc.name, code)
			}
		})
	}
	e.mustGantry("rm", "-f", "c")
	e.assertClean()
}
