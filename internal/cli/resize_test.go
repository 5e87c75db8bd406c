package cli

import (
	"context"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/ptytest"
)

// openPty returns a new pty's master and slave.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	return ptytest.Open(t)
}

// recorder collects the sizes forwardResize sends.
type recorder struct {
	mu    sync.Mutex
	sizes [][2]uint32 // width, height
	fail  bool
}

func (r *recorder) resize(_ context.Context, w, h uint32) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sizes = append(r.sizes, [2]uint32{w, h})
	if r.fail {
		return unix.EIO
	}
	return nil
}

func (r *recorder) get() [][2]uint32 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][2]uint32(nil), r.sizes...)
}

// waitSizes waits (a hang guard, not a timing assertion) until r has n
// sizes and returns them.
func (r *recorder) waitSizes(t *testing.T, n int) [][2]uint32 {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		got := r.get()
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func setSize(t *testing.T, f *os.File, rows, cols uint16) {
	t.Helper()
	if err := unix.IoctlSetWinsize(int(f.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		t.Fatalf("set pty size: %v", err)
	}
}

// TestForwardResize: the size is sent at once and again after each
// SIGWINCH that comes with a new size; an unchanged size is not sent
// twice, and nothing is sent once stop has returned.
func TestForwardResize(t *testing.T) {
	master, slave := openPty(t)
	setSize(t, master, 37, 101)
	var r recorder
	stop := forwardResize(context.Background(), int(slave.Fd()), r.resize)
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	if got := r.waitSizes(t, 1); len(got) != 1 || got[0] != [2]uint32{101, 37} {
		t.Fatalf("sizes at start = %v, want [[101 37]] (width, height)", got)
	}

	// The test process is not the pty's foreground group, so it sends
	// itself the SIGWINCH the kernel would send.
	setSize(t, master, 50, 132)
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	if got := r.waitSizes(t, 2); len(got) != 2 || got[1] != [2]uint32{132, 50} {
		t.Fatalf("sizes after a resize = %v, want [132 50] second", got)
	}

	// A SIGWINCH without a change sends nothing; the next change is sent
	// (and is the only one: the unchanged size was skipped, not queued).
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	setSize(t, master, 24, 80)
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	if got := r.waitSizes(t, 3); len(got) != 3 || got[2] != [2]uint32{80, 24} {
		t.Fatalf("sizes = %v, want [80 24] third and no repeat of [132 50]", got)
	}

	stop()
	stopped = true
	setSize(t, master, 10, 20)
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	// Give a (wrongly) live handler a chance to run before looking.
	time.Sleep(50 * time.Millisecond)
	if got := r.get(); len(got) != 3 {
		t.Errorf("sizes after stop = %v, want no more than the 3 before it", got)
	}
}

// TestForwardResizeRetriesAfterFailure: a size whose resize failed is
// sent again at the next SIGWINCH even though it did not change.
func TestForwardResizeRetriesAfterFailure(t *testing.T) {
	master, slave := openPty(t)
	setSize(t, master, 37, 101)
	r := recorder{fail: true}
	stop := forwardResize(context.Background(), int(slave.Fd()), r.resize)
	defer stop()
	r.waitSizes(t, 1)
	r.mu.Lock()
	r.fail = false
	r.mu.Unlock()
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	if got := r.waitSizes(t, 2); len(got) != 2 || got[1] != [2]uint32{101, 37} {
		t.Errorf("sizes = %v, want [101 37] sent again after the failed first", got)
	}
}

// TestForwardResizeUnsetSize: a terminal whose size was never set (0x0)
// sends nothing.
func TestForwardResizeUnsetSize(t *testing.T) {
	_, slave := openPty(t)
	var r recorder
	stop := forwardResize(context.Background(), int(slave.Fd()), r.resize)
	if err := syscall.Kill(os.Getpid(), syscall.SIGWINCH); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	stop()
	if got := r.get(); len(got) != 0 {
		t.Errorf("sizes of a 0x0 terminal = %v, want none", got)
	}
}
