package containers

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/client"
)

// eventsOf replays the events held by gantryd and returns those of the
// container named name, in order: with stopAtDelete up to both its
// /containers/delete and its /tasks/exit (the exit is published by a
// watcher of its own), else its first three.
func (e *env) eventsOf(name string, stopAtDelete bool) []*gantryv1.Event {
	e.t.Helper()
	c, err := client.New(e.sock)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var id string
	var out []*gantryv1.Event
	seen := map[string]bool{}
	errDone := errors.New("done")
	// since 1: every held event but the first (a marker container's).
	err = c.Subscribe(ctx, nil, 1, false, func(ev *gantryv1.Event) error {
		if ev.GetTopic() == "/containers/create" && ev.GetAttributes()["name"] == name {
			id = ev.GetId()
		}
		if id == "" || ev.GetId() != id {
			return nil
		}
		out = append(out, ev)
		seen[ev.GetTopic()] = true
		if (stopAtDelete && seen["/containers/delete"] && seen["/tasks/exit"]) || (!stopAtDelete && len(out) >= 3) {
			return errDone
		}
		return nil
	})
	if !errors.Is(err, errDone) {
		e.t.Fatalf("events of %s: %v (got %d)", name, err, len(out))
	}
	return out
}

func topics(evs []*gantryv1.Event) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, ev.GetTopic())
	}
	return out
}

// TestRunStartsOnCreate: `gantry run` creates and starts the task in one
// call. The events are the two-step path's, in order: /containers/create,
// /tasks/create, /tasks/start (with the pid), /tasks/exit (with the
// status), and the container is removed (--rm). A detached run is running
// when `run -d` returns, its output in the log; a command that does not
// exist fails with 127 and leaves nothing.
func TestRunStartsOnCreate(t *testing.T) {
	e := newEnv(t)
	// The first event is this marker's, so that eventsOf misses none of ours.
	e.mustGantry("create", "--name", "marker", "busybox", "true")
	e.mustGantry("rm", "marker")
	out, errOut, code := e.gantry("run", "--rm", "--name", "soc", "busybox", "sh", "-c", "echo to-out; echo to-err >&2; exit 4")
	if code != 4 || out != "to-out\n" || errOut != "to-err\n" {
		t.Fatalf("run --rm: exit %d, stdout %q, stderr %q; want 4, %q, %q", code, out, errOut, "to-out\n", "to-err\n")
	}
	evs := e.eventsOf("soc", true)
	pos := map[string]int{}
	for i, ev := range evs {
		if _, dup := pos[ev.GetTopic()]; dup {
			t.Errorf("event %s twice: %v", ev.GetTopic(), topics(evs))
		}
		pos[ev.GetTopic()] = i
	}
	order := []string{"/containers/create", "/tasks/create", "/tasks/start", "/tasks/exit"}
	for i, tp := range order {
		if _, ok := pos[tp]; !ok {
			t.Fatalf("no %s event: %v", tp, topics(evs))
		}
		if i > 0 && pos[tp] < pos[order[i-1]] {
			t.Fatalf("%s before %s: %v", tp, order[i-1], topics(evs))
		}
	}
	for _, tp := range []string{"/tasks/delete", "/containers/delete"} {
		if _, ok := pos[tp]; !ok {
			t.Fatalf("no %s event: %v", tp, topics(evs))
		}
	}
	if pid := evs[pos["/tasks/start"]].GetAttributes()["pid"]; pid == "" || pid == "0" {
		t.Errorf("/tasks/start without a pid: %v", evs[pos["/tasks/start"]].GetAttributes())
	}
	if st := evs[pos["/tasks/exit"]].GetAttributes()["exit_status"]; st != "4" {
		t.Errorf("/tasks/exit exit_status %q, want 4", st)
	}

	// Detached: running at once, output in the log.
	id := e.mustGantry("run", "-d", "--name", "socd", "busybox", "sh", "-c", "echo detached-out; sleep 1000")
	if len(id) < 12 {
		t.Fatalf("run -d printed %q, want an id", id)
	}
	if st := e.ps()["socd"].State; st != "running" {
		t.Fatalf("after run -d: %s, want running", st)
	}
	e.waitFor("the detached container's output in its log", func() bool {
		out, _, _ := e.gantry("logs", "socd")
		return out == "detached-out\n"
	})
	if got := topics(e.eventsOf("socd", false)); fmt.Sprint(got) != "[/containers/create /tasks/create /tasks/start]" {
		t.Fatalf("events of run -d: %v", got)
	}
	// As docker: start of a running container does nothing, exit 0.
	if out, errOut, code := e.gantry("start", "socd"); code != 0 || out != "socd\n" {
		t.Errorf("start of a running container: exit %d, stdout %q, stderr %q; want 0", code, out, errOut)
	}
	if st := e.ps()["socd"].State; st != "running" {
		t.Errorf("after start of a running container: %s, want running", st)
	}
	e.mustGantry("rm", "-f", "socd")

	// A missing command: 127, nothing left.
	_, errOut, code = e.gantry("run", "--rm", "--name", "socmissing", "busybox", "/no/such/cmd")
	if code != 127 {
		t.Fatalf("run of a missing command: exit %d (stderr %q), want 127", code, errOut)
	}
	if out := e.mustGantry("ps", "-a", "-q"); out != "" {
		t.Fatalf("containers left: %q", out)
	}
	e.assertClean()
}
