package shim

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
	"github.com/gantry-project/gantry/internal/ociclient"
)

// fakeRuntime is a runtime script that records each call (verb and
// arguments, one a line, in dir/calls): start succeeds; a forced delete
// waits for dir/go and then fails; a plain delete succeeds.
const fakeRuntime = `#!/bin/sh
dir=$(dirname "$0")
while [ $# -gt 0 ]; do
	case "$1" in
	--log|--log-format|--root) shift 2 ;;
	*) break ;;
	esac
done
echo "$*" >>"$dir/calls"
case "$1" in
delete)
	if [ "$2" = --force ]; then
		while [ ! -e "$dir/go" ]; do sleep 0.01; done
		echo "delete failed on purpose" >&2
		exit 1
	fi
	;;
esac
exit 0
`

// fakeShim returns a shim whose runtime is fakeRuntime, with its init in
// status, as create leaves it (no hold: a plain create).
func fakeShim(t *testing.T, o Options, status string) (*Shim, *process, string) {
	t.Helper()
	dir := t.TempDir()
	rt := filepath.Join(dir, "runtime")
	if err := os.WriteFile(rt, []byte(fakeRuntime), 0o755); err != nil {
		t.Fatal(err)
	}
	o.ID, o.StateDir = "c", filepath.Join(dir, "state")
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		t.Fatal(err)
	}
	s := &Shim{opts: o, execs: map[string]*process{}, byPid: map[int]*process{},
		unclaimed: map[int]exit{}, done: make(chan struct{}),
		rt: &ociclient.Runtime{Binary: rt, Timeout: time.Minute}}
	ioDone := make(chan struct{})
	close(ioDone)
	p := &process{status: status, exited: make(chan struct{}), pidfd: -1, out: newOutputHub(false), ioDone: ioDone, pid: 1 << 22}
	s.init = p
	t.Cleanup(func() { p.out.release(); p.out.close() })
	return s, p, dir
}

func calls(t *testing.T, dir string) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "calls"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestStartHoldOutput: a Start that asks to hold the output (a
// start-on-create retried on a container left created) holds the init's
// output for its first attacher, as a create with Start and HoldOutput
// does: output written before anyone attached is given to the first
// attacher, and a writer past the hold waits for it. Without the ask,
// nothing is held.
func TestStartHoldOutput(t *testing.T) {
	for _, hold := range []bool{true, false} {
		s, p, _ := fakeShim(t, Options{}, shimapi.StatusCreated)
		params, err := json.Marshal(shimapi.StartRequest{HoldOutput: hold})
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.dispatch(context.Background(), shimapi.Request{Method: shimapi.MethodStart, Params: params})
		if err != nil {
			t.Fatalf("hold %v: Start: %v", hold, err)
		}
		if st := res.(shimapi.StateResponse); st.Status != shimapi.StatusRunning {
			t.Fatalf("hold %v: status after Start %q, want running", hold, st.Status)
		}
		p.out.write(shimapi.OutputStdout, []byte("first\n"))
		if hold {
			// Past the hold: the writer waits for the attacher.
			wrote := make(chan struct{})
			big := make([]byte, shimapi.OutputHoldMax)
			go func() { p.out.write(shimapi.OutputStdout, big); close(wrote) }()
			select {
			case <-wrote:
				t.Fatal("a write past the hold returned before the first attacher came")
			case <-time.After(50 * time.Millisecond):
			}
			sub, pending := p.out.attach()
			if len(pending) != 1 || string(pending[0].data) != "first\n" {
				t.Fatalf("first attacher got %d held chunks, want %q", len(pending), "first\n")
			}
			select {
			case c := <-sub.ch:
				if len(c.data) != len(big) {
					t.Fatalf("attacher got %d bytes after the hold, want %d", len(c.data), len(big))
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the write past the hold never reached the attacher")
			}
			<-wrote
			p.out.detach(sub)
			continue
		}
		if _, pending := p.out.attach(); len(pending) != 0 {
			t.Fatalf("Start without HoldOutput held %d chunks", len(pending))
		}
	}
}

// TestFailedForcedDeleteStartsEagerDelete: with DeleteOnExit, an init that
// exits while a forced Delete is in flight leaves the runtime's delete to
// that Delete; when it fails, the shim's own delete of the exited
// container starts then, so nothing is left.
func TestFailedForcedDeleteStartsEagerDelete(t *testing.T) {
	s, p, dir := fakeShim(t, Options{DeleteOnExit: true}, shimapi.StatusRunning)
	ctx := context.Background()
	deleted := make(chan error, 1)
	go func() {
		_, _, err := s.delete(ctx, shimapi.DeleteRequest{Force: true})
		deleted <- err
	}()
	// Wait until the forced delete is in the runtime.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if c := calls(t, dir); c[0] == "delete --force c" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forced delete never reached the runtime: %q", calls(t, dir))
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.finish(p, 0, time.Now()) // the init exits meanwhile
	if err := os.WriteFile(filepath.Join(dir, "go"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err == nil {
		t.Fatal("Delete succeeded though the runtime's delete failed")
	}
	s.mu.Lock()
	eager := s.eager
	s.mu.Unlock()
	if eager == nil {
		t.Fatalf("no delete of the exited container after the failed Delete; runtime calls %q", calls(t, dir))
	}
	<-eager
	s.mu.Lock()
	err := s.eagerErr
	s.mu.Unlock()
	if err != nil {
		t.Fatalf("eager delete: %v", err)
	}
	if c := calls(t, dir); len(c) != 2 || c[1] != "delete c" {
		t.Fatalf("runtime calls %q, want the forced delete then a plain one", c)
	}
}
