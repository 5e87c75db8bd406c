package containers

import (
	"fmt"
	"syscall"
	"testing"
)

// TestOOMKilled: a container whose process the kernel's OOM killer kills
// (under --memory 8m, tail buffers /dev/zero, which has no newline, until
// it is killed) exits 137 and shows oomKilled true in inspect and ps
// --format json, as docker's State.OOMKilled, also after a restart of
// gantryd (the shim keeps it in its exit record) and after its shim died;
// one that exits by itself
// shows false, and so does a running one.
func TestOOMKilled(t *testing.T) {
	e := newEnv(t)
	if _, errOut, code := e.gantry("run", "--name", "hog", "--memory", "8m", "busybox", "tail", "/dev/zero"); code != 137 {
		t.Fatalf("run hog: exit %d, stderr %q; want 137 (killed by the OOM killer)", code, errOut)
	}
	if _, errOut, code := e.gantry("run", "--name", "modest", "--memory", "8m", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run modest: exit %d, stderr %q; want 3", code, errOut)
	}
	e.mustGantry("run", "-d", "--name", "idle", "busybox", "sleep", "1000")
	check := func(when string) {
		t.Helper()
		for _, tc := range []struct {
			name string
			oom  bool
			code int // -1: running
		}{{"hog", true, 137}, {"modest", false, 3}, {"idle", false, -1}} {
			inspect, ps := e.inspectStates(tc.name)
			for _, s := range []struct {
				from string
				st   inspectState
			}{{"inspect", inspect}, {"ps --format json", ps}} {
				if s.st.OOMKilled == nil || *s.st.OOMKilled != tc.oom {
					t.Errorf("%s: %s of %s: oomKilled %v, want %v", when, s.from, tc.name, ptrString(s.st.OOMKilled), tc.oom)
				}
				switch {
				case tc.code < 0 && s.st.State != "running":
					t.Errorf("%s: %s of %s: state %q, want running", when, s.from, tc.name, s.st.State)
				case tc.code >= 0 && (s.st.ExitCode == nil || *s.st.ExitCode != tc.code):
					t.Errorf("%s: %s of %s: exit code %v, want %d", when, s.from, tc.name, ptrString(s.st.ExitCode), tc.code)
				}
			}
		}
	}
	check("after the exits")
	e.stop()
	e.start()
	check("after a restart of gantryd")
	// Shims that die after recording the exits: gantryd cleans up after
	// them and keeps each exit as the shim recorded it.
	for _, pid := range shimsOf(e.dir) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	e.waitFor("the dead shims cleaned up", func() bool {
		ps := e.ps()
		return ps["hog"].State == "exited" && ps["modest"].State == "exited" && ps["idle"].State == "exited"
	})
	for _, tc := range []struct {
		name string
		oom  bool
		code int
	}{{"hog", true, 137}, {"modest", false, 3}} {
		inspect, _ := e.inspectStates(tc.name)
		if inspect.OOMKilled == nil || *inspect.OOMKilled != tc.oom || inspect.ExitCode == nil || *inspect.ExitCode != tc.code {
			t.Errorf("after its shim died: %s: oomKilled %v exit %v, want %v and %d", tc.name, ptrString(inspect.OOMKilled), ptrString(inspect.ExitCode), tc.oom, tc.code)
		}
	}
	e.mustGantry("rm", "-f", "hog", "modest", "idle")
	e.assertClean()
}

// ptrString shows what a pointer points to, or <missing>.
func ptrString[T any](p *T) string {
	if p == nil {
		return "<missing>"
	}
	return fmt.Sprint(*p)
}
