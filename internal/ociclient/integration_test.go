package ociclient

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/test/bundle"
	"github.com/gantry-project/gantry/test/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if os.Geteuid() == 0 {
		if err := bundle.RemoveCgroupParent(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}
	os.Exit(code)
}

// testRuntime returns GANTRY_RUNTIME, or ./cmd/gantry-oci built into a temp
// dir.
func testRuntime(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("runs containers: needs root")
	}
	if p := os.Getenv("GANTRY_RUNTIME"); p != "" {
		return p
	}
	dir := t.TempDir()
	if err := testbin.Build(dir, "gantry-oci"); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(dir, "gantry-oci")
}

func TestLifecycleAgainstRuntime(t *testing.T) {
	bin := testRuntime(t)
	dir := t.TempDir()
	r := &Runtime{Binary: bin, Root: filepath.Join(dir, "root"), Log: filepath.Join(dir, "log.json"), Timeout: time.Minute}
	b := bundle.New(t, bundle.Args("/probe", "sleep", "1000"))
	ctx := context.Background()
	t.Cleanup(func() { r.Delete(ctx, b.ID, true) })

	pidFile := filepath.Join(dir, "pid")
	if err := r.Create(ctx, b.ID, CreateOptions{Bundle: b.Dir, PidFile: pidFile}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	pid, err := ReadPidFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.State(ctx, b.ID)
	if err != nil || s.Status != "created" || s.Pid != pid {
		t.Fatalf("State after create = %+v, %v; want created, pid %d", s, err, pid)
	}
	if err := r.Start(ctx, b.ID); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if s, err = r.State(ctx, b.ID); err != nil || s.Status != "running" {
		t.Fatalf("State after start = %+v, %v", s, err)
	}
	pids, err := r.Ps(ctx, b.ID)
	if err != nil || len(pids) != 1 || pids[0] != pid {
		t.Fatalf("Ps = %v, %v; want [%d]", pids, err, pid)
	}
	if err := r.Pause(ctx, b.ID); err != nil {
		t.Fatalf("Pause: %v", err)
	}
	if s, _ = r.State(ctx, b.ID); s.Status != "paused" {
		t.Fatalf("status after pause = %q", s.Status)
	}
	if err := r.Resume(ctx, b.ID); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if err := r.Update(ctx, b.ID, []byte(`{"pids":{"limit":50}}`)); err != nil {
		t.Fatalf("Update: %v", err)
	}
	if data, err := r.Stats(ctx, b.ID); err != nil || len(data) == 0 {
		t.Fatalf("Stats = %s, %v", data, err)
	}

	proc := filepath.Join(dir, "process.json")
	if err := os.WriteFile(proc, []byte(`{"args":["/probe","exit","7"],"cwd":"/","user":{"uid":0,"gid":0}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	code, err := r.Exec(ctx, b.ID, ExecOptions{ProcessFile: proc})
	if err != nil || code != 7 {
		t.Fatalf("Exec = %d, %v; want 7", code, err)
	}

	// A delete of a running container without force is refused.
	if err := r.Delete(ctx, b.ID, false); err == nil {
		t.Fatal("Delete of a running container without --force succeeded")
	}
	if err := r.Kill(ctx, b.ID, syscall.SIGKILL, false); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err = r.State(ctx, b.ID)
		if err == nil && s.Status == "stopped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container not stopped after SIGKILL: %+v, %v", s, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := r.Delete(ctx, b.ID, false); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, err = r.State(ctx, b.ID)
	var re *Error
	if !errors.As(err, &re) || re.Message == "" {
		t.Fatalf("State after delete = %v, want a runtime error with a message", err)
	}
	if !errors.Is(err, errdefs.ErrNotFound) {
		t.Logf("State after delete: %v (kind not recognised as not found)", err)
	}
}

// TestRunDetachedAgainstRuntime: `run --detach` returns with the
// container running and its pid in the pid file; the output written
// before the call returned is in the pipe.
func TestRunDetachedAgainstRuntime(t *testing.T) {
	bin := testRuntime(t)
	dir := t.TempDir()
	r := &Runtime{Binary: bin, Root: filepath.Join(dir, "root"), Log: filepath.Join(dir, "log.json"), Timeout: time.Minute}
	b := bundle.New(t, bundle.Args("/probe", "sleep", "1000"))
	ctx := context.Background()
	t.Cleanup(func() { r.Delete(ctx, b.ID, true) })
	pidFile := filepath.Join(dir, "pid")
	if err := r.RunDetached(ctx, b.ID, CreateOptions{Bundle: b.Dir, PidFile: pidFile}); err != nil {
		t.Fatalf("RunDetached: %v", err)
	}
	pid, err := ReadPidFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := r.State(ctx, b.ID)
	if err != nil || s.Status != "running" || s.Pid != pid {
		t.Fatalf("State after run --detach = %+v, %v; want running, pid %d", s, err, pid)
	}
	if err := r.Delete(ctx, b.ID, true); err != nil {
		t.Fatalf("Delete --force: %v", err)
	}
}

func TestCreateErrorMessage(t *testing.T) {
	bin := testRuntime(t)
	dir := t.TempDir()
	r := &Runtime{Binary: bin, Root: filepath.Join(dir, "root"), Timeout: time.Minute}
	b := bundle.New(t, bundle.Args("/does-not-exist"))
	b.Spec.Root.Path = "no-such-rootfs"
	b.Write()
	err := r.Create(context.Background(), b.ID, CreateOptions{Bundle: b.Dir})
	r.Delete(context.Background(), b.ID, true)
	var re *Error
	if !errors.As(err, &re) || re.Message == "" {
		t.Fatalf("Create with a missing rootfs = %v, want a runtime error carrying the log's message", err)
	}
	t.Logf("error: %v", err)
}
