package shim

import (
	"errors"
	"os"
	"testing"
	"time"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/ociclient"
	"github.com/gantry-project/gantry/internal/shim"
	"github.com/gantry-project/gantry/test/bundle"
)

// TestDeleteOnExit: with DeleteOnExit the runtime forgets the container
// once its init exited, before anyone calls Delete; the exit is still
// recorded and reported, and Delete then answers with it and leaves
// nothing.
func TestDeleteOnExit(t *testing.T) {
	b := bundle.New(t, bundle.Args("/bin/sh", "-c", "echo out; exit 7"))
	e := startShim(t, b, func(o *shim.Options) { o.DeleteOnExit = true })
	c := ctx(t)
	if _, err := e.client.Start(c); err != nil {
		t.Fatalf("Start: %v", err)
	}
	st, err := e.client.Wait(c, "")
	if err != nil || st.Status != shimapi.StatusStopped || st.ExitStatus != 7 {
		t.Fatalf("Wait = %+v, %v; want stopped with status 7", st, err)
	}
	if rec, ok, err := shim.ReadExit(e.opts.StateDir); err != nil || !ok || rec.ExitStatus != 7 {
		t.Fatalf("exit record = %+v, %v, %v; want status 7", rec, ok, err)
	}
	rt := &ociclient.Runtime{Binary: runtimePath, Root: e.opts.RuntimeRoot}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := rt.State(c, b.ID)
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the runtime still knows the exited container, and Delete was not called")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d := cgroupDirs(b.ID); len(d) != 0 {
		t.Fatalf("cgroups left after the runtime's delete: %v", d)
	}
	pid := shimPid(t, e.opts)
	st, err = e.client.Delete(c, "", false)
	if err != nil || st.Status != shimapi.StatusStopped || st.ExitStatus != 7 {
		t.Fatalf("Delete = %+v, %v; want stopped with status 7", st, err)
	}
	waitGone(t, "shim", pid)
	if _, err := os.Stat(e.opts.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir after Delete: %v", err)
	}
	if !hasEntry(logEntries(t, e.opts.LogPath), "stdout", "out\n") {
		t.Fatal("the container's output is not in its log")
	}
}

// TestDeleteOnExitForced: a running container of a DeleteOnExit shim is
// still deleted by a forced Delete (which kills it), leaving nothing.
func TestDeleteOnExitForced(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "sleep", "1000"))
	e := startShim(t, b, func(o *shim.Options) { o.DeleteOnExit = true })
	c := ctx(t)
	if _, err := e.client.Start(c); err != nil {
		t.Fatalf("Start: %v", err)
	}
	pid := shimPid(t, e.opts)
	st, err := e.client.Delete(c, "", true)
	if err != nil || st.Status != shimapi.StatusStopped {
		t.Fatalf("Delete = %+v, %v; want stopped", st, err)
	}
	waitGone(t, "shim", pid)
	if _, err := os.Stat(e.opts.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("state dir after Delete: %v", err)
	}
	if d := cgroupDirs(b.ID); len(d) != 0 {
		t.Fatalf("cgroups left after Delete: %v", d)
	}
	rt := &ociclient.Runtime{Binary: runtimePath, Root: e.opts.RuntimeRoot}
	if _, err := rt.State(c, b.ID); err == nil {
		t.Fatal("the runtime still knows the container")
	}
}
