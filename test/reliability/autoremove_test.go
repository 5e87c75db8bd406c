package reliability

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// runAutoRemoved creates and starts, through the Go client, a container
// labelled autoremove with value (what `gantry run -d --rm` sets for
// "detached"), with the bind mounts binds (host:container), and returns
// its id.
func (e *env) runAutoRemoved(name, value string, binds []string, args ...string) string {
	e.t.Helper()
	o := &gantryv1.ContainerOptions{Args: args, ArgsSet: true}
	for _, b := range binds {
		src, dst, _ := strings.Cut(b, ":")
		o.Mounts = append(o.Mounts, &gantryv1.ContainerMount{Source: src, Destination: dst})
	}
	req := &gantryv1.CreateContainerRequest{Name: name, Image: "busybox", Options: o,
		Labels: map[string]string{gantryv1.LabelAutoRemove: value}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctr, _, err := e.client().RunContainer(ctx, req, false)
	if err != nil {
		e.t.Fatalf("run %s: %v\n%s", name, err, tail(e.log(), 30))
	}
	return ctr.GetId()
}

// waitGone waits until ps -a no longer lists name.
func (e *env) waitGone(name string) {
	e.t.Helper()
	e.waitFor(name+" removed by gantryd", func() bool {
		_, listed := e.ps()[name]
		return !listed
	})
}

// TestAutoRemoveDetached: a container labelled autoremove "detached" is
// removed by gantryd itself once its task exits, with the events of a
// delete, and nothing is left: when its command exits, when `gantry stop`
// stops it, when its shim is killed, and, at the restart, when it exited
// or its shim died while gantryd was down. One labelled "true" is left to
// its client.
func TestAutoRemoveDetached(t *testing.T) {
	e := newEnv(t)
	t.Run("exit", func(t *testing.T) {
		e.t = t
		id := e.runAutoRemoved("ar-exit", gantryv1.AutoRemoveDetached, nil, "sh", "-c", "exit 3")
		e.waitGone("ar-exit")
		evs := e.awaitEvents(id, 1, "/tasks/exit", "/tasks/delete", "/containers/delete")
		if st := evs["/tasks/exit"].GetAttributes()["exit_status"]; st != "3" {
			t.Errorf("/tasks/exit exit_status %q, want 3", st)
		}
		if evs["/containers/delete"].GetSequence() < evs["/tasks/exit"].GetSequence() {
			t.Errorf("/containers/delete (%d) before /tasks/exit (%d)", evs["/containers/delete"].GetSequence(), evs["/tasks/exit"].GetSequence())
		}
		e.assertClean()
	})
	t.Run("stop", func(t *testing.T) {
		e.t = t
		e.runAutoRemoved("ar-stop", gantryv1.AutoRemoveDetached, nil, "sleep", "1000")
		e.mustGantry("stop", "-t", "1", "ar-stop")
		e.waitGone("ar-stop")
		e.assertClean()
	})
	t.Run("shim-killed", func(t *testing.T) {
		e.t = t
		e.runAutoRemoved("ar-orphan", gantryv1.AutoRemoveDetached, nil, "sleep", "1000")
		pid := e.ps()["ar-orphan"].Pid
		shims := shimsOf(e.dir)
		if len(shims) != 1 || !runs(pid, "sleep") {
			t.Fatalf("shims %v, container process %d: want one shim and a live sleep", shims, pid)
		}
		if err := syscall.Kill(shims[0], syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		e.waitGone("ar-orphan")
		if runs(pid, "sleep") {
			t.Errorf("the container's process %d still runs after its removal", pid)
		}
		e.assertClean()
	})
	t.Run("client-removes", func(t *testing.T) {
		e.t = t
		e.runAutoRemoved("ar-client", gantryv1.AutoRemoveClient, nil, "sh", "-c", "exit 4")
		e.waitFor("ar-client stopped", func() bool { return e.ps()["ar-client"].State == "stopped" })
		// gantryd's own removals run after an exit: one that exits later
		// and is removed shows that they have run, and passed this one.
		e.runAutoRemoved("ar-marker", gantryv1.AutoRemoveDetached, nil, "true")
		e.waitGone("ar-marker")
		if p, listed := e.ps()["ar-client"]; !listed || p.ExitCode == nil || *p.ExitCode != 4 {
			t.Errorf("ar-client: %+v (listed %v), want kept, exited 4, for its client to remove", p, listed)
		}
		e.mustGantry("rm", "ar-client")
		e.assertClean()
	})
	t.Run("while-down", func(t *testing.T) {
		e.t = t
		ctl := t.TempDir()
		exits := e.runAutoRemoved("ar-down-exit", gantryv1.AutoRemoveDetached, []string{ctl + ":/ctl"},
			"sh", "-c", "while [ ! -e /ctl/go ]; do sleep 0.1; done; exit 5")
		orphan := e.runAutoRemoved("ar-down-orphan", gantryv1.AutoRemoveDetached, nil, "sleep", "1000")
		pid := e.ps()["ar-down-orphan"].Pid
		start := e.awaitEvents(exits, 1, "/tasks/start")["/tasks/start"].GetSequence()
		var orphanShim int
		for _, p := range shimsOf(e.dir) {
			if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); strings.Contains(string(cmdline), orphan) {
				orphanShim = p
			}
		}
		if orphanShim == 0 {
			t.Fatalf("no shim of %s among %v", orphan, shimsOf(e.dir))
		}
		e.crash()
		if err := syscall.Kill(orphanShim, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(ctl, "go"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		e.waitFor("the exit recorded by its shim", func() bool {
			_, err := os.Stat(filepath.Join(e.state, "shims", "default", exits, "exit.json"))
			return err == nil
		})
		e.start()
		e.waitGone("ar-down-exit")
		e.waitGone("ar-down-orphan")
		if runs(pid, "sleep") {
			t.Errorf("the process %d of the container whose shim died is still running", pid)
		}
		evs := e.awaitEvents(exits, start, "/tasks/exit", "/containers/delete")
		if st := evs["/tasks/exit"].GetAttributes()["exit_status"]; st != "5" {
			t.Errorf("/tasks/exit exit_status %q, want 5", st)
		}
		e.awaitEvents(orphan, start, "/tasks/exit", "/containers/delete")
		e.assertClean()
	})
}
