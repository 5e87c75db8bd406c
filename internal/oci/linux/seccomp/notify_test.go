package seccomp

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func TestSendNotifyFd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })

	// Any fd will do outside a filter: send one end of a pipe and check
	// that the agent's copy reaches the other end.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })

	state := &specs.ContainerProcessState{
		Fds:      []string{"caller-set"},
		Pid:      1234,
		Metadata: "meta",
		State:    specs.State{ID: "c1", Status: specs.StateCreating, Pid: 1234, Bundle: "/b"},
	}
	errc := make(chan error, 1)
	go func() { errc <- SendNotifyFd(sock, state, int(w.Fd())) }()

	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	got, fds, err := readState(conn)
	for _, fd := range fds {
		t.Cleanup(func() { unix.Close(fd) })
	}
	if err != nil {
		t.Fatalf("read state: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("SendNotifyFd: %v", err)
	}
	if len(fds) != 1 {
		t.Fatalf("received %d fds, want 1", len(fds))
	}
	if len(got.Fds) != 1 || got.Fds[0] != specs.SeccompFdName {
		t.Errorf("fds = %q, want [%q]", got.Fds, specs.SeccompFdName)
	}
	if got.Version != specs.Version || got.Pid != 1234 || got.Metadata != "meta" ||
		got.State.ID != "c1" || got.State.Bundle != "/b" || got.State.Status != specs.StateCreating {
		t.Errorf("state = %+v, want the caller's state with version %s", got, specs.Version)
	}
	if state.Fds[0] != "caller-set" || state.Version != "" {
		t.Errorf("SendNotifyFd modified the caller's state: %+v", state)
	}
	if _, err := unix.Write(fds[0], []byte("ok")); err != nil {
		t.Fatalf("write to received fd: %v", err)
	}
	buf := make([]byte, 2)
	if _, err := r.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read through pipe = %q, %v; the received fd is not the sent one", buf, err)
	}
}

func TestSendNotifyFdErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no.sock")
	st := &specs.ContainerProcessState{}
	if err := SendNotifyFd(missing, st, 0); !errors.Is(err, unix.ENOENT) {
		t.Errorf("no listener: err = %v, want ENOENT", err)
	}
	if err := SendNotifyFd(missing, nil, 0); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("nil state: err = %v, want ErrInvalidArgument", err)
	}
	if err := SendNotifyFd(missing, st, -1); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("fd -1: err = %v, want ErrInvalidArgument", err)
	}
}
