package shim

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/shim"
	"github.com/gantry-project/gantry/test/bundle"
)

// readAll reads an AttachOutput stream to its end, per stream.
func readAll(t *testing.T, out *shim.OutputStream) map[int]string {
	t.Helper()
	got := map[int]string{}
	for {
		stream, data, err := out.Next()
		if errors.Is(err, io.EOF) {
			return got
		}
		if err != nil {
			t.Fatalf("output: %v", err)
		}
		got[stream] += string(data)
	}
}

// TestStartOnCreateHoldsOutput: a shim started with Start and HoldOutput
// runs the container with one `run --detach`: it is running when Launch
// returns, Start is refused, and a container that writes more than the
// hold and exits at once still gives its first attacher, which comes
// late, every byte of both streams; the exit is recorded and reported
// with its status, and the log has the output too.
func TestStartOnCreateHoldsOutput(t *testing.T) {
	const n = 60000 // ~350 KB of seq: more than OutputHoldMax
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if want.Len() <= shimapi.OutputHoldMax {
		t.Fatalf("test output %d bytes fits the hold (%d)", want.Len(), shimapi.OutputHoldMax)
	}
	b := bundle.New(t, bundle.Args("/bin/sh", "-c", fmt.Sprintf("seq 1 %d; echo last >&2; exit 7", n)))
	e := startShim(t, b, func(o *shim.Options) { o.Start, o.HoldOutput, o.DeleteOnExit = true, true, true })
	c := ctx(t)
	st, err := e.client.State(c, "")
	if err != nil || (st.Status != shimapi.StatusRunning && st.Status != shimapi.StatusStopped) || st.Pid <= 0 {
		t.Fatalf("State after launch = %+v, %v; want running (or stopped) with a pid", st, err)
	}
	if _, err := e.client.Start(c); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Start of a started container = %v, want failed precondition", err)
	}
	// Give the container time to fill the hold and the pipe: it cannot
	// exit before the attacher comes, as its writes wait.
	time.Sleep(300 * time.Millisecond)
	out, err := e.client.AttachOutput(c, "")
	if err != nil {
		t.Fatalf("AttachOutput: %v", err)
	}
	got := readAll(t, out)
	out.Close()
	if got[shimapi.OutputStdout] != want.String() {
		s := got[shimapi.OutputStdout]
		t.Fatalf("stdout: %d bytes, want %d; it ends %q", len(s), want.Len(), s[max(0, len(s)-40):])
	}
	if got[shimapi.OutputStderr] != "last\n" {
		t.Fatalf("stderr %q, want %q", got[shimapi.OutputStderr], "last\n")
	}
	st, err = e.client.Wait(c, "")
	if err != nil || st.Status != shimapi.StatusStopped || st.ExitStatus != 7 {
		t.Fatalf("Wait = %+v, %v; want stopped with status 7", st, err)
	}
	if rec, ok, err := shim.ReadExit(e.opts.StateDir); err != nil || !ok || rec.ExitStatus != 7 {
		t.Fatalf("exit record = %+v, %v, %v; want status 7", rec, ok, err)
	}
	entries := logEntries(t, e.opts.LogPath)
	if len(entries) < n || !hasEntry(entries, "stderr", "last\n") || !hasEntry(entries, "stdout", fmt.Sprintf("%d\n", n)) {
		t.Fatalf("log has %d entries, want the %d lines and stderr", len(entries), n+1)
	}
	pid := shimPid(t, e.opts)
	if _, err := e.client.Delete(c, "", false); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	waitGone(t, "shim", pid)
	if _, err := os.Stat(e.opts.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir after Delete: %v", err)
	}
}

// TestStartOnCreateFastExit: a container that prints a little and exits
// at once, attached to only after its exit was reported: the attacher
// still gets the held output, then the end.
func TestStartOnCreateFastExit(t *testing.T) {
	b := bundle.New(t, bundle.Args("/bin/sh", "-c", "echo quick; exit 3"))
	e := startShim(t, b, func(o *shim.Options) { o.Start, o.HoldOutput = true, true })
	c := ctx(t)
	// The output fits the hold: the exit is reported without waiting for
	// the attacher.
	st, err := e.client.Wait(c, "")
	if err != nil || st.ExitStatus != 3 {
		t.Fatalf("Wait = %+v, %v; want status 3", st, err)
	}
	out, err := e.client.AttachOutput(c, "")
	if err != nil {
		t.Fatalf("AttachOutput after the exit: %v", err)
	}
	got := readAll(t, out)
	out.Close()
	if got[shimapi.OutputStdout] != "quick\n" {
		t.Fatalf("output %q, want %q", got[shimapi.OutputStdout], "quick\n")
	}
}

// TestStartOnCreateWithoutHold: Start without HoldOutput (a detached run)
// keeps nothing for an attacher; the log has the output.
func TestStartOnCreateWithoutHold(t *testing.T) {
	b := bundle.New(t, bundle.Args("/bin/sh", "-c", "echo detached; exit 0"))
	e := startShim(t, b, func(o *shim.Options) { o.Start = true })
	c := ctx(t)
	if st, err := e.client.Wait(c, ""); err != nil || st.ExitStatus != 0 {
		t.Fatalf("Wait = %+v, %v", st, err)
	}
	out, err := e.client.AttachOutput(c, "")
	if err != nil {
		t.Fatalf("AttachOutput: %v", err)
	}
	if got := readAll(t, out); len(got) != 0 {
		t.Fatalf("output held without HoldOutput: %v", got)
	}
	out.Close()
	if !hasEntry(logEntries(t, e.opts.LogPath), "stdout", "detached\n") {
		t.Fatal("the output is not in the log")
	}
}

// TestStartOnCreateFailure: a command that does not exist fails the
// launch with the runtime's message and leaves no state directory.
func TestStartOnCreateFailure(t *testing.T) {
	if skipAll != "" {
		t.Skip(skipAll)
	}
	b := bundle.New(t, bundle.Args("/does-not-exist"))
	o := options(t, b)
	o.Start, o.HoldOutput = true, true
	t.Cleanup(func() { cleanup(t, o) })
	_, err := shim.Launch(ctx(t), shimBin, o)
	if err == nil || !strings.Contains(err.Error(), "does-not-exist") {
		t.Fatalf("Launch of a missing command = %v, want an error naming it", err)
	}
	if _, err := os.Stat(o.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir after a failed launch: %v", err)
	}
	if d := cgroupDirs(b.ID); len(d) != 0 {
		t.Fatalf("cgroups left: %v", d)
	}
}
