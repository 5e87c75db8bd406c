package containers

import (
	"fmt"
	"strings"
	"testing"
)

// TestRunRmFastExitShowsAllOutput: a container that writes a lot on both
// streams and exits at once: `gantry run --rm` shows every byte of it and
// exits with the container's code, although it learns of the exit from a
// wait in flight alongside the output, and the shim deletes the container
// with the runtime as soon as it exits (--rm). Repeated, since the output
// and the exit race.
func TestRunRmFastExitShowsAllOutput(t *testing.T) {
	e := newEnv(t)
	const n = 3000
	var want strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	for i := 0; i < 5; i++ {
		out, errOut, code := e.gantry("run", "--rm", "busybox", "sh", "-c", fmt.Sprintf("seq 1 %d; echo last >&2; exit 7", n))
		if code != 7 {
			t.Fatalf("run %d: exit %d, want 7 (stderr %q)", i, code, errOut)
		}
		if out != want.String() {
			t.Fatalf("run %d: stdout has %d bytes, want %d (the %d lines of seq); it ends %q", i, len(out), want.Len(), n, out[max(0, len(out)-40):])
		}
		if errOut != "last\n" {
			t.Fatalf("run %d: stderr %q, want %q", i, errOut, "last\n")
		}
	}
	// A command that prints nothing and exits at once.
	if out, errOut, code := e.gantry("run", "--rm", "busybox", "/bin/true"); code != 0 || out != "" || errOut != "" {
		t.Fatalf("run /bin/true: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	e.assertClean()
}
