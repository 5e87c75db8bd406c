package containers

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"testing"

	"github.com/gantry-project/gantry/test/testproc"
)

// inspectState is what TestPidOnlyWhileRunning and TestOOMKilled read of
// `inspect` and `ps --format json`; the pointers tell a field that is
// missing from one that is zero.
type inspectState struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Pid       *int   `json:"pid"`
	ExitCode  *int   `json:"exitCode"`
	OOMKilled *bool  `json:"oomKilled"`
}

// inspectStates returns what inspect and ps -a --format json say of the
// container name.
func (e *env) inspectStates(name string) (inspect, ps inspectState) {
	e.t.Helper()
	var list []inspectState
	if err := json.Unmarshal([]byte(e.mustGantry("inspect", name)), &list); err != nil || len(list) != 1 {
		e.t.Fatalf("inspect %s: %v (%d objects)", name, err, len(list))
	}
	inspect = list[0]
	list = nil
	if err := json.Unmarshal([]byte(e.mustGantry("ps", "-a", "--format", "json")), &list); err != nil {
		e.t.Fatal(err)
	}
	for _, p := range list {
		if p.Name == name {
			return inspect, p
		}
	}
	e.t.Fatalf("ps -a does not list %s", name)
	return
}

// TestPidOnlyWhileRunning: inspect and ps --format json show the pid of
// the container's process while it runs, and pid 0 once it does not (as
// docker's State.Pid): created, exited by itself, stopped.
func TestPidOnlyWhileRunning(t *testing.T) {
	e := newEnv(t)
	pid := func(name string) (inspect, ps int) {
		t.Helper()
		i, p := e.inspectStates(name)
		if i.Pid == nil || p.Pid == nil {
			t.Fatalf("%s: no pid field (inspect %v, ps %v): want it shown, 0 when not running", name, i.Pid, p.Pid)
		}
		return *i.Pid, *p.Pid
	}

	e.mustGantry("create", "--name", "created", "busybox", "true")
	if i, p := pid("created"); i != 0 || p != 0 {
		t.Errorf("created container: pid %d (inspect), %d (ps), want 0", i, p)
	}

	e.mustGantry("run", "-d", "--name", "sleeper", "busybox", "sleep", "1000")
	i, p := pid("sleeper")
	if cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(i) + "/cmdline"); i <= 0 || i != p || !testproc.Alive(i) || !bytes.Contains(cmdline, []byte("sleep")) {
		t.Fatalf("running container: pid %d (inspect), %d (ps), want the pid of its sleep", i, p)
	}
	e.mustGantry("stop", "-t", "1", "sleeper")
	if i, p := pid("sleeper"); i != 0 || p != 0 {
		t.Errorf("stopped container: pid %d (inspect), %d (ps), want 0", i, p)
	}

	if _, errOut, code := e.gantry("run", "--name", "quitter", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run quitter: exit %d, stderr %q; want 3", code, errOut)
	}
	if i, p := pid("quitter"); i != 0 || p != 0 {
		t.Errorf("exited container: pid %d (inspect), %d (ps), want 0", i, p)
	}

	e.mustGantry("rm", "created", "sleeper", "quitter")
	e.assertClean()
}
