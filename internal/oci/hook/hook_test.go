package hook

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

const busybox = "/bin/busybox"

func needBusybox(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("%s not available: %v", busybox, err)
	}
}

func sh(script string, env ...string) specs.Hook {
	return specs.Hook{Path: busybox, Args: []string{"sh", "-c", script}, Env: env}
}

func testState() *specs.State {
	return &specs.State{Version: specs.Version, ID: "ctr-1", Status: specs.StateCreated, Pid: 4242, Bundle: "/b", Annotations: map[string]string{"a": "b"}}
}

func TestRunStateOnStdin(t *testing.T) {
	needBusybox(t)
	out := filepath.Join(t.TempDir(), "state.json")
	h := sh(`cat > "$OUT"`, "OUT="+out)
	if err := Run(context.Background(), "prestart", 0, h, testState()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var got specs.State
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatalf("hook got %q: %v", b, err)
	}
	want := testState()
	if got.ID != want.ID || got.Pid != want.Pid || got.Status != want.Status || got.Bundle != want.Bundle || got.Annotations["a"] != "b" || got.Version != want.Version {
		t.Fatalf("state on stdin = %+v, want %+v", got, *want)
	}
}

func TestRunEnvExactAndArgv0(t *testing.T) {
	needBusybox(t)
	t.Setenv("GANTRY_HOOK_LEAK", "1")
	out := filepath.Join(t.TempDir(), "env")
	// busybox picks the applet from argv0, so "sh" proves Args[0] is argv0.
	h := sh(`env > "$OUT"; echo "argv0=$0" >> "$OUT"`, "OUT="+out, "FOO=bar baz")
	if err := Run(context.Background(), "createRuntime", 1, h, testState()); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		got[l] = true
	}
	for _, want := range []string{"OUT=" + out, "FOO=bar baz", "argv0=sh"} {
		if !got[want] {
			t.Errorf("hook env/argv lacks %q; got %q", want, b)
		}
	}
	for l := range got {
		if strings.HasPrefix(l, "GANTRY_HOOK_LEAK=") || strings.HasPrefix(l, "HOME=") {
			t.Errorf("hook saw %q from the runtime's environment", l)
		}
	}
}

func TestRunEmptyEnv(t *testing.T) {
	needBusybox(t)
	t.Setenv("GANTRY_HOOK_LEAK", "1")
	h := specs.Hook{Path: busybox, Args: []string{"sh", "-c", `test -z "$GANTRY_HOOK_LEAK" || { echo leaked >&2; exit 3; }`}}
	if err := Run(context.Background(), "poststop", 0, h, testState()); err != nil {
		t.Fatal(err)
	}
}

func TestRunDefaultArgv0(t *testing.T) {
	// With no args argv0 must be the path; busybox picks its applet from
	// argv0, so a symlink named "false" exits 1 only if that holds.
	needBusybox(t)
	link := filepath.Join(t.TempDir(), "false")
	if err := os.Symlink(busybox, link); err != nil {
		t.Fatal(err)
	}
	err := Run(context.Background(), "poststart", 0, specs.Hook{Path: link}, testState())
	if err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("Run(%s with no args) = %v, want exit status 1 from busybox false", link, err)
	}
}

func TestRunFailureNamesHookAndStderr(t *testing.T) {
	needBusybox(t)
	h := sh(`echo; echo "first problem" >&2; echo second >&2; exit 2`)
	err := Run(context.Background(), "prestart", 3, h, testState())
	if err == nil {
		t.Fatal("Run of a failing hook succeeded")
	}
	want := `prestart hook 3 (/bin/busybox): exit status 2: first problem`
	if err.Error() != want {
		t.Fatalf("error = %q, want %q", err, want)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("error %v does not unwrap to an exit status 2", err)
	}
}

func TestRunSignal(t *testing.T) {
	needBusybox(t)
	err := Run(context.Background(), "poststop", 0, sh(`kill -TERM $$`), testState())
	if err == nil || !strings.Contains(err.Error(), "signal: terminated") {
		t.Fatalf("Run of a hook killed by SIGTERM = %v", err)
	}
}

func TestRunTimeoutKills(t *testing.T) {
	needBusybox(t)
	one := 1
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	// The child sleep would outlive a kill of sh alone and keep stderr open.
	h := sh(`sleep 600 & echo $! > "$P"; wait`, "P="+pidFile)
	h.Timeout = &one
	err := Run(context.Background(), "createRuntime", 0, h, testState())
	if err == nil || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "createRuntime hook 0 (/bin/busybox): killed after timeout of 1s") {
		t.Fatalf("Run of a hook over its timeout = %v", err)
	}
	b, rerr := os.ReadFile(pidFile)
	if rerr != nil {
		t.Fatal(rerr)
	}
	assertGone(t, strings.TrimSpace(string(b)))
}

func TestRunContextCancel(t *testing.T) {
	needBusybox(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Run(ctx, "poststop", 0, sh(`sleep 600`), testState())
	if err == nil || !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context = %v", err)
	}
}

func TestRunAllStopsAtFirstError(t *testing.T) {
	needBusybox(t)
	marker := filepath.Join(t.TempDir(), "ran")
	hooks := []specs.Hook{
		sh(`exit 0`),
		sh(`echo boom >&2; exit 1`),
		sh(`touch "$M"`, "M="+marker),
	}
	err := RunAll(context.Background(), "poststart", hooks, testState())
	if err == nil || !strings.HasPrefix(err.Error(), "poststart hook 1 (/bin/busybox): exit status 1: boom") {
		t.Fatalf("RunAll = %v", err)
	}
	if _, err := os.Stat(marker); !os.IsNotExist(err) {
		t.Fatalf("hook after the failing one ran (stat: %v)", err)
	}
	if err := RunAll(context.Background(), "poststart", hooks[:1], testState()); err != nil {
		t.Fatal(err)
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "exe")
	noexec := filepath.Join(dir, "noexec")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(noexec, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	zero, five := 0, 5
	tests := []struct {
		name  string
		hooks *specs.Hooks
		want  string // error text; "" for valid
	}{
		{"nil", nil, ""},
		{"empty", &specs.Hooks{}, ""},
		{"valid", &specs.Hooks{Prestart: []specs.Hook{{Path: exe, Timeout: &five}}, Poststop: []specs.Hook{{Path: exe}}}, ""},
		{"relative", &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "bin/x"}}}, `hooks.createRuntime[0].path: "bin/x" is not absolute`},
		{"empty path", &specs.Hooks{Poststart: []specs.Hook{{Path: exe}, {}}}, `hooks.poststart[1].path: is required`},
		{"missing", &specs.Hooks{CreateContainer: []specs.Hook{{Path: filepath.Join(dir, "nope")}}}, `hooks.createContainer[0].path: "` + filepath.Join(dir, "nope") + `" does not exist`},
		{"not executable", &specs.Hooks{CreateContainer: []specs.Hook{{Path: noexec}}}, `hooks.createContainer[0].path: "` + noexec + `" is not executable`},
		{"startContainer resolves in the container", &specs.Hooks{StartContainer: []specs.Hook{{Path: "/only/in/the/container"}}}, ""},
		{"directory", &specs.Hooks{Prestart: []specs.Hook{{Path: dir}}}, `hooks.prestart[0].path: "` + dir + `" is not a regular file`},
		{"zero timeout", &specs.Hooks{Poststop: []specs.Hook{{Path: exe, Timeout: &zero}}}, `hooks.poststop[0].timeout: 0 must be positive`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.hooks)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("Validate = %v, want %q (invalid argument)", err, tc.want)
			}
		})
	}
}
