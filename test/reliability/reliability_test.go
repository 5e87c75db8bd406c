package reliability

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/task"
	"github.com/gantry-project/gantry/test/testcgroup"
)

// counter writes "line N" every 100 ms.
const counter = `i=0; while true; do echo line $i; i=$((i+1)); sleep 0.1; done`

// checkCounterLog checks that the counter's lines in the log of name are
// "line 0", "line 1", ... without a gap (exec output, which shares the
// log, is skipped); it returns how many there are.
func (e *env) checkCounterLog(name string) int {
	e.t.Helper()
	n := 0
	for _, l := range strings.Split(strings.TrimSpace(e.mustGantry("logs", name)), "\n") {
		if !strings.HasPrefix(l, "line ") {
			continue
		}
		if l != "line "+strconv.Itoa(n) {
			e.t.Errorf("log of %s: line %q where %q was due (log not continuous)", name, l, "line "+strconv.Itoa(n))
			return n
		}
		n++
	}
	return n
}

// TestKillDaemonWith20Containers: kill -9 of gantryd with 20 counters and
// 5 waiting containers; while it is down the 5 exit with their own codes;
// after the restart all 20 are running, exec-able, their logs continuous,
// and the 5 show their exit codes.
func TestKillDaemonWith20Containers(t *testing.T) {
	e := newEnv(t)
	ctl := t.TempDir()
	var names []string
	for i := range 20 {
		n := fmt.Sprintf("count%d", i)
		names = append(names, n)
		e.mustGantry("run", "-d", "--name", n, "busybox", "sh", "-c", counter)
	}
	ids := map[string]string{}
	for i := range 5 {
		n := fmt.Sprintf("quit%d", i)
		e.mustGantry("run", "-d", "--name", n, "-v", ctl+":/ctl", "busybox", "sh", "-c",
			fmt.Sprintf("while [ ! -e /ctl/go ]; do sleep 0.1; done; exit %d", 10+i))
	}
	ps := e.ps()
	for i := range 5 {
		n := fmt.Sprintf("quit%d", i)
		ids[n] = ps[n].ID
		if ps[n].State != "running" {
			t.Fatalf("%s: %+v, want running", n, ps[n])
		}
	}
	e.waitFor("output of every counter", func() bool {
		for _, n := range names {
			if !strings.Contains(e.mustGantry("logs", "--tail", "1", n), "line ") {
				return false
			}
		}
		return true
	})
	e.crash()
	if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the 5 exits recorded by their shims", func() bool {
		for _, id := range ids {
			if _, err := os.Stat(filepath.Join(e.state, "shims", "default", id, "exit.json")); err != nil {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond) // let the counters write while gantryd is down
	e.start()
	ps = e.ps()
	for _, n := range names {
		if ps[n].State != "running" {
			t.Errorf("%s after restart: %+v, want running", n, ps[n])
			continue
		}
		if out := e.mustGantry("exec", n, "echo", "alive"); !strings.Contains(out, "alive") {
			t.Errorf("exec into %s after restart: %q", n, out)
		}
	}
	for i := range 5 {
		n := fmt.Sprintf("quit%d", i)
		if p := ps[n]; p.ExitCode == nil || *p.ExitCode != 10+i {
			t.Errorf("%s after restart: %+v, want exit code %d", n, p, 10+i)
		}
	}
	// The counters wrote on while gantryd was down: the log has no gap.
	for _, n := range names {
		before := e.checkCounterLog(n)
		e.waitFor("more output of "+n, func() bool { return e.checkCounterLog(n) > before })
	}
	if z := persistentZombies(append(shimsOf(e.dir), e.pid())); len(z) > 0 {
		t.Errorf("zombies: %v", z)
	}
	for n := range ps {
		e.mustGantry("rm", "-f", n)
	}
	e.assertClean()
}

// persistentZombies returns the zombies whose parent is one of parents
// and that are still there after two seconds (a reaper may be busy for a
// moment; a zombie it never reaps stays).
func persistentZombies(parents []int) []int {
	first := zombiesOf(parents)
	if len(first) == 0 {
		return nil
	}
	time.Sleep(2 * time.Second)
	still := map[int]bool{}
	for _, z := range zombiesOf(parents) {
		still[z] = true
	}
	var out []int
	for _, z := range first {
		if still[z] {
			out = append(out, z)
		}
	}
	return out
}

// hangRuntime writes a runtime that passes every call through to
// gantry-oci, except the verb named in <script>.verb, which writes
// <script>.called and sleeps forever.
func hangRuntime(t *testing.T, verb string) string {
	dir := t.TempDir()
	p := filepath.Join(dir, "hang-runtime")
	body := fmt.Sprintf(`#!/bin/sh
verb=$(cat %[1]s.verb 2>/dev/null)
for a in "$@"; do
	if [ -n "$verb" ] && [ "$a" = "$verb" ]; then
		touch %[1]s.called
		exec sleep 1000000
	fi
done
exec %[2]s "$@"
`, p, filepath.Join(binDir, "gantry-oci"))
	if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p+".verb", []byte(verb), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// faultCase is one fault point, the operations that reach it and what
// the container must be after the restart.
type faultCase struct {
	point string
	// want: "gone" (the interrupted create was undone, or the delete
	// finished), or the state gantry shows.
	want []string
}

// TestFaultPoints kills gantryd at each named step of create, start,
// exec, stop and delete (GANTRYD_FAULT), restarts it, and checks that the
// container is gone or in a state gantry shows and finishes, and that
// after gantry rm -f nothing is left (gantry system check agrees).
func TestFaultPoints(t *testing.T) {
	cases := []faultCase{
		{task.FaultAfterContainerRecord, []string{"gone"}},
		{task.FaultAfterSnapshotPrepare, []string{"gone"}},
		{task.FaultAfterBundleWritten, []string{"gone"}},
		{task.FaultBeforeShimLaunch, []string{"created"}},
		{task.FaultAfterShimLaunch, []string{"created"}},
		{task.FaultAfterTaskStart, []string{"running"}},
		{task.FaultAfterExecStart, []string{"running"}},
		{task.FaultBeforeKill, []string{"running"}},
		{task.FaultAfterKill, []string{"running", "stopped"}},
		{task.FaultBeforeShimDelete, []string{"gone"}},
		{task.FaultAfterShimDelete, []string{"gone"}},
		{task.FaultAfterBundleRemove, []string{"gone"}},
		{task.FaultAfterSnapshotRemove, []string{"gone"}},
		{task.FaultAfterMetadataDelete, []string{"gone"}},
		{task.FaultAfterStartFailureMark, []string{"failed"}},
	}
	if len(cases) != len(task.FaultPoints) {
		t.Fatalf("%d cases for %d fault points", len(cases), len(task.FaultPoints))
	}
	e := newEnv(t, `runtime_timeout = "2s"`)
	hang := hangRuntime(t, "start")
	for _, tc := range cases {
		t.Run(tc.point, func(t *testing.T) {
			parent := e.t
			e.t = t
			defer func() { e.t = parent }()
			e.stop()
			e.extraEnv = []string{task.FaultEnv + "=" + tc.point}
			e.start()
			e.extraEnv = nil
			name := "f-" + tc.point
			steps := [][]string{
				{"create", "--name", name, "busybox", "sh", "-c", counter},
				{"start", name},
				{"exec", name, "echo", "from-exec"},
				{"stop", "-t", "1", name},
				{"rm", name},
			}
			if tc.point == task.FaultAfterStartFailureMark {
				steps = [][]string{{"create", "--runtime", hang, "--name", name, "busybox", "sleep", "100"}, {"start", name}}
			}
			for _, s := range steps {
				e.gantry(s...)
				if dead, _ := e.died(); dead {
					break
				}
			}
			got, exists := e.restartAfterFault(t, tc.point, name, tc.want)
			if exists {
				// Finish it as a user would.
				switch got {
				case "created":
					e.mustGantry("start", name)
					if st := e.ps()[name].State; st != "running" {
						t.Errorf("after start: %s, want running", st)
					}
					e.mustGantry("stop", "-t", "1", name)
				case "running", "paused":
					e.mustGantry("stop", "-t", "1", name)
				}
				if out, code := e.systemCheck(); code != 0 && got != "failed" {
					t.Errorf("system check before rm: exit %d\n%s", code, out)
				}
				e.mustGantry("rm", "-f", name)
			}
			e.assertClean()
		})
	}
}

// TestRuntimeHang: a runtime whose create or start never answers; the
// call fails with a clear error after runtime_timeout, gantryd keeps
// answering meanwhile (another container even runs), the container is
// marked failed and gantry rm -f removes it.
func TestRuntimeHang(t *testing.T) {
	e := newEnv(t, `runtime_timeout = "3s"`)
	for _, verb := range []string{"create", "start"} {
		t.Run(verb, func(t *testing.T) {
			e.t = t
			hang := hangRuntime(t, verb)
			name := "hung-" + verb
			// create, then start (which runs the runtime's create and
			// start): `gantry run` would remove a container whose task
			// could not be created.
			e.mustGantry("create", "--runtime", hang, "--name", name, "busybox", "sleep", "100")
			cmd := exec.Command(filepath.Join(binDir, "gantry"), "--address", e.sock, "start", name)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			e.waitFor("the runtime's "+verb+" to hang", func() bool {
				_, err := os.Stat(hang + ".called")
				return err == nil
			})
			// While the runtime hangs, gantryd answers and runs others.
			e.mustGantry("version")
			e.mustGantry("ps", "-a")
			if out := e.mustGantry("run", "--rm", "busybox", "echo", "still serving"); out != "still serving\n" {
				t.Errorf("run during the hang: %q", out)
			}
			select {
			case <-done:
				t.Logf("note: the hung start ended before the checks during the hang finished")
			default:
			}
			var err error
			select {
			case err = <-done:
			case <-time.After(3 * time.Minute):
				cmd.Process.Kill()
				t.Fatalf("gantry start with a hung runtime did not return")
			}
			msg := strings.TrimSpace(stderr.String())
			if err == nil || !strings.Contains(msg, "timed out") || strings.Contains(msg, "\n") {
				t.Errorf("start with a hung %s: %v, stderr %q; want a failure with one line saying the call timed out", verb, err, msg)
			}
			if st := e.ps()[name].State; st != "failed" {
				t.Errorf("%s: state %q, want failed", name, st)
			}
			e.mustGantry("rm", "-f", name)
			e.assertClean()
		})
	}
}

// TestShimKilledLeavesNothing: kill -9 of a shim while gantryd runs.
// gantryd notices (its watcher's Wait connection to the shim closes) and
// does what its start-up does for a shim found dead: the container's
// process is killed and the runtime's state of it deleted; the container
// shows exited, exit status unknown, at the time gantryd noticed;
// /tasks/exit (unknown) and /tasks/delete are published; system check
// finds nothing; stop, then rm, work and leave nothing.
func TestShimKilledLeavesNothing(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.mustGantry("run", "-d", "--name", "orphan", "busybox", "sleep", "1000"))
	p := e.ps()["orphan"]
	if p.State != "running" || !runs(p.Pid, "sleep") {
		t.Fatalf("orphan: %+v, want running with a live sleep", p)
	}
	pid := p.Pid
	pids := shimsOf(e.dir)
	if len(pids) != 1 {
		t.Fatalf("shims: %v, want one", pids)
	}
	killed := time.Now()
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	e.waitFor("the container's process killed", func() bool { return !runs(pid, "sleep") })
	e.waitFor("orphan reported exited", func() bool { return e.ps()["orphan"].State == "exited" })
	p = e.ps()["orphan"]
	if p.ExitCode != nil || !strings.HasPrefix(p.Status, "Exited (unknown)") {
		t.Errorf("orphan: %+v, want exited with the exit status unknown", p)
	}
	// The clock's own slack aside, the exit is dated when gantryd noticed.
	if p.ExitedAt == nil || p.ExitedAt.Before(killed.Add(-time.Second)) {
		t.Errorf("orphan: exited at %v, want the time gantryd noticed (the kill was at %v)", p.ExitedAt, killed)
	}
	evs := e.awaitEvents(id, 1, "/tasks/exit", "/tasks/delete")
	if st := evs["/tasks/exit"].GetAttributes()["exit_status"]; st != "unknown" {
		t.Errorf("/tasks/exit exit_status %q, want unknown", st)
	}
	for _, left := range []string{filepath.Join(e.state, "runtime", "gantry-oci", id), filepath.Join(e.state, "shims", "default", id)} {
		if _, err := os.Stat(left); err == nil {
			t.Errorf("%s left after the shim died", left)
		}
	}
	if cg := testcgroup.Under(e.cgroupParent); len(cg) > 0 {
		t.Errorf("cgroups left after the shim died: %v", cg)
	}
	if out, code := e.systemCheck(); code != 0 {
		t.Errorf("system check after the shim died: exit %d\n%s", code, out)
	}
	if _, errOut, code := e.gantry("exec", "orphan", "true"); code == 0 || !strings.Contains(errOut, "not running") {
		t.Errorf("exec into orphan: exit %d, %q; want refused as not running", code, errOut)
	}
	e.mustGantry("stop", "orphan")
	e.mustGantry("rm", "orphan")
	e.assertClean()
}

// TestSystemCheckFindsAndPruneRepairs: leftovers made behind gantryd's
// back (a bundle directory, container files, a cgroup under the parent)
// are reported by system check and removed by system prune.
func TestSystemCheckFindsAndPruneRepairs(t *testing.T) {
	e := newEnv(t)
	ghost := "0123456789abcdef"
	made := []string{
		filepath.Join(e.state, "bundles", "default", ghost),
		filepath.Join(e.root, "containers", "default", ghost),
		filepath.Join(e.state, "shims", "default", ghost),
	}
	for _, d := range made {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	cg := filepath.Join(testcgroup.Dirs(e.cgroupParent)[0], "default-"+ghost)
	if err := os.MkdirAll(cg, 0o755); err != nil {
		t.Fatal(err)
	}
	out, code := e.systemCheck()
	if code == 0 {
		t.Fatalf("system check found nothing:\n%s", out)
	}
	for _, want := range append(made, cg) {
		if !strings.Contains(out, want) {
			t.Errorf("system check does not report %s:\n%s", want, out)
		}
	}
	e.mustGantry("system", "prune")
	for _, d := range append(made, cg) {
		if _, err := os.Stat(d); err == nil {
			t.Errorf("%s left after prune", d)
		}
	}
	e.assertClean()
}

// cycles is GANTRY_RELIABILITY_CYCLES, default 500.
func cycles(t *testing.T) int {
	if v := os.Getenv("GANTRY_RELIABILITY_CYCLES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("GANTRY_RELIABILITY_CYCLES=%q: want a positive number", v)
		}
		return n
	}
	return 500
}

// TestCyclesParallelClients: run/stop/rm cycles from 8 CLI clients at
// once; then no leak in gantryd (fds, RSS within a bound), no shim,
// mount, snapshot, cgroup or file left, metadata consistent (system
// check), and no zombie.
func TestCyclesParallelClients(t *testing.T) {
	const clients = 8
	total := cycles(t)
	e := newEnv(t)
	cycle := func(w, i int) error {
		name := fmt.Sprintf("c%d-%d", w, i)
		args := []string{"run", "-d", "--name", name, "busybox", "sleep", "1000"}
		stop := []string{"stop", "-t", "0", name}
		if i%2 == 1 {
			args = []string{"run", "-d", "--name", name, "busybox", "sh", "-c", "trap 'exit 3' TERM; while :; do sleep 0.1; done"}
			stop = []string{"stop", "-t", "5", name} // SIGTERM before the trap is set is ignored (pid 1): then SIGKILL
		}
		for _, a := range [][]string{args, stop, {"rm", name}} {
			if out, errOut, code := e.gantry(a...); code != 0 {
				return fmt.Errorf("gantry %s: exit %d: %s%s%s", strings.Join(a, " "), code, out, errOut, e.shimFiles(name))
			}
		}
		return nil
	}
	// Warm up, so that the first measure includes what gantryd keeps.
	for i := range clients {
		if err := cycle(99, i); err != nil {
			t.Fatal(err)
		}
	}
	pid := e.pid()
	fd0, rss0 := fdCount(pid), rssKB(pid)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < total; i += clients {
				if err := cycle(w, i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d run/stop/rm cycles from %d clients in %v", total, clients, time.Since(start).Round(time.Second))
	fd1, rss1 := fdCount(pid), rssKB(pid)
	t.Logf("gantryd: fds %d -> %d, RSS %d kB -> %d kB", fd0, fd1, rss0, rss1)
	if fd1 > fd0+16 {
		t.Errorf("gantryd fds grew from %d to %d", fd0, fd1)
	}
	if rss1 > rss0+64*1024 {
		t.Errorf("gantryd RSS grew from %d kB to %d kB", rss0, rss1)
	}
	if z := persistentZombies([]int{pid}); len(z) > 0 {
		t.Errorf("zombies of gantryd: %v", z)
	}
	e.assertClean()
}

// shimFiles returns the shim's own log and the runtime's log of the
// container name, for a failure message.
func (e *env) shimFiles(name string) string {
	out, _, _ := e.gantry("ps", "-a", "--format", "json")
	var list []psEntry
	json.Unmarshal([]byte(out), &list)
	id := ""
	for _, p := range list {
		if p.Name == name {
			id = p.ID
		}
	}
	var b strings.Builder
	for _, f := range []string{"shim.log", "runtime.json"} {
		data, _ := os.ReadFile(filepath.Join(e.state, "shims", "default", strings.TrimSpace(id), f))
		fmt.Fprintf(&b, "\n%s:\n%s", f, tail(string(data), 20))
	}
	return b.String()
}
