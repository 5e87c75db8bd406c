package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/test/bundle"
)

// mustRun runs the runtime and fails t on a non-zero exit.
func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, code := Run(t, args...)
	if code != 0 {
		t.Fatalf("%s: exit %d, stderr: %s", strings.Join(args, " "), code, stderr)
	}
	return stdout
}

func processAlive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

func TestLifecycle(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	mustRun(t, "create", "--bundle", b.Dir, b.ID)

	s := GetState(t, b.ID)
	if s.Status != "created" {
		t.Fatalf("after create: status %q, want created", s.Status)
	}
	if s.ID != b.ID || s.PID <= 0 || !processAlive(s.PID) {
		t.Errorf("after create: state %+v, want id %s and a live pid", s, b.ID)
	}
	if got, _ := filepath.EvalSymlinks(s.Bundle); got != b.Dir {
		t.Errorf("state bundle = %q, want %q", s.Bundle, b.Dir)
	}
	if ids := List(t); len(ids) != 1 || ids[0] != b.ID {
		t.Errorf("list -q = %q, want [%s]", ids, b.ID)
	}

	mustRun(t, "start", b.ID)
	s = GetState(t, b.ID)
	if s.Status != "running" {
		t.Fatalf("after start: status %q, want running", s.Status)
	}
	// A second start of a running container fails.
	if _, _, code := Run(t, "start", b.ID); code == 0 {
		t.Errorf("start of a running container: exit 0, want an error")
	}
	// delete without --force refuses a running container.
	if _, _, code := Run(t, "delete", b.ID); code == 0 {
		t.Errorf("delete of a running container: exit 0, want an error")
	}

	mustRun(t, "kill", b.ID, "KILL")
	s = WaitStatus(t, b.ID, "stopped")
	if processAlive(s.PID) && s.PID != 0 {
		// The pid may be reused by then, but not within this test.
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID) + "/cmdline"); err == nil && strings.Contains(string(b), "probe") {
			t.Errorf("stopped container's process %d still alive", s.PID)
		}
	}

	mustRun(t, "delete", b.ID)
	if _, _, code := Run(t, "state", b.ID); code == 0 {
		t.Errorf("state after delete: exit 0, want an error")
	}
	if ids := List(t); len(ids) != 0 {
		t.Errorf("list -q after delete = %q, want none", ids)
	}
}

func TestKillSignal(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "signals"))
	mustRun(t, "run", "--detach", "--bundle", b.Dir, b.ID)
	if s := GetState(t, b.ID); s.Status != "running" {
		t.Fatalf("after run --detach: status %q, want running", s.Status)
	}
	// A signal that does not exist: an error naming it, the container
	// untouched.
	for _, sig := range []string{"SIGBOGUS", "65", "0x9"} {
		_, stderr, code := Run(t, "kill", b.ID, sig)
		if code == 0 {
			t.Errorf("kill %s: exit 0, want an error", sig)
			continue
		}
		checkOneErrorLine(t, stderr)
		if !runtimeIsRunc && !strings.Contains(stderr, sig) {
			t.Errorf("kill %s: error %q does not name the signal", sig, strings.TrimSpace(stderr))
		}
	}
	if s := GetState(t, b.ID); s.Status != "running" {
		t.Fatalf("after kill with bad signals: status %q, want running", s.Status)
	}
	// The probe handles SIGTERM and exits; pid 1 of a pid namespace only
	// gets signals it handles, so this checks delivery.
	mustRun(t, "kill", b.ID, "TERM")
	WaitStatus(t, b.ID, "stopped")
	mustRun(t, "delete", b.ID)
}

func TestRunDetach(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	stdout := mustRun(t, "run", "--detach", "--bundle", b.Dir, b.ID)
	if strings.TrimSpace(stdout) != "" {
		t.Errorf("run --detach printed %q, want nothing", stdout)
	}
	s := GetState(t, b.ID)
	if s.Status != "running" || !processAlive(s.PID) {
		t.Fatalf("after run --detach: state %+v, want running with a live pid", s)
	}
	mustRun(t, "delete", "--force", b.ID)
	if processAlive(s.PID) {
		if c, err := os.ReadFile("/proc/" + strconv.Itoa(s.PID) + "/cmdline"); err == nil && strings.Contains(string(c), "probe") {
			t.Errorf("delete --force left process %d alive", s.PID)
		}
	}
}

func TestPidFile(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	pidFile := filepath.Join(t.TempDir(), "sub", "..", "pid")
	mustRun(t, "create", "--pid-file", pidFile, "--bundle", b.Dir, b.ID)
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("read pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("pid file %q: %v", data, err)
	}
	if s := GetState(t, b.ID); s.PID != pid {
		t.Errorf("pid file says %d, state says %d", pid, s.PID)
	}
	mustRun(t, "delete", "--force", b.ID)
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name string
		edit func(*specs.Spec)
		// rootfs, when true, removes the bundle's rootfs directory.
		noRootfs bool
		// want is a part of the error line: the field or value at fault.
		want string
		// gantryOnly: runc 1.1.5 accepts this config (a warning at most).
		gantryOnly bool
	}{
		{name: "unknown ociVersion major", edit: func(s *specs.Spec) { s.Version = "2.0.0" }, want: "ociVersion", gantryOnly: true},
		{name: "relative cwd", edit: func(s *specs.Spec) { s.Process.Cwd = "tmp" }, want: "process.cwd"},
		{name: "bad rlimit", edit: func(s *specs.Spec) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_BOGUS", Hard: 1, Soft: 1})
		}, want: "RLIMIT_BOGUS"},
		{name: "bad capability", edit: func(s *specs.Spec) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_BOGUS")
		}, want: "CAP_BOGUS", gantryOnly: true},
		{name: "hook not executable", edit: func(s *specs.Spec) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/etc/passwd"}}}
		}, want: "hooks.createRuntime[0].path", gantryOnly: true},
		{name: "unsupported memoryPolicy", edit: func(s *specs.Spec) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_BIND", Nodes: "0"}
		}, want: "linux.memoryPolicy", gantryOnly: true},
		{name: "unknown namespace", edit: func(s *specs.Spec) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}},
		{name: "missing rootfs", edit: func(s *specs.Spec) { s.Root.Path = "does-not-exist" }},
		{name: "no process args", edit: func(s *specs.Spec) { s.Process.Args = nil }},
		{name: "missing bind source", edit: func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind",
				Source: "/nonexistent/gantry-test-source", Options: []string{"bind"}})
		}},
	}
	for _, tt := range tests {
		for _, verb := range []string{"create", "run"} {
			t.Run(tt.name+"/"+verb, func(t *testing.T) {
				if tt.gantryOnly {
					skipIfRunc(t, "runc 1.1.5 accepts this config")
				}
				b := bundle.New(t, tt.edit)
				_, stderr, code := Run(t, verb, "--bundle", b.Dir, b.ID)
				if code == 0 {
					t.Fatalf("%s: exit 0, want an error", verb)
				}
				checkOneErrorLine(t, stderr)
				if tt.want != "" && !runtimeIsRunc && !strings.Contains(stderr, tt.want) {
					t.Errorf("error %q does not name %q", strings.TrimSpace(stderr), tt.want)
				}
				checkNothingLeft(t, b.ID)
			})
		}
	}
}

func TestDuplicateID(t *testing.T) {
	b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	mustRun(t, "create", "--bundle", b.Dir, b.ID)
	first := GetState(t, b.ID)

	b2 := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	_, stderr, code := Run(t, "create", "--bundle", b2.Dir, b.ID)
	if code == 0 {
		t.Fatalf("create with a duplicate id: exit 0, want an error")
	}
	checkOneErrorLine(t, stderr)
	// The first container is untouched.
	if s := GetState(t, b.ID); s.Status != "created" || s.PID != first.PID || s.Bundle != first.Bundle {
		t.Errorf("after the failed duplicate: state %+v, want %+v", s, first)
	}
	if ids := List(t); len(ids) != 1 || ids[0] != b.ID {
		t.Errorf("list -q = %q, want [%s]", ids, b.ID)
	}
	mustRun(t, "delete", "--force", b.ID)
}

// checkOneErrorLine fails t unless stderr holds exactly one non-empty line.
func checkOneErrorLine(t *testing.T, stderr string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if strings.TrimSpace(stderr) == "" || len(lines) != 1 {
		t.Errorf("stderr has %d lines, want one error line: %q", len(lines), stderr)
	}
}

// checkNothingLeft fails t when container id is listed, has a state entry
// or a cgroup.
func checkNothingLeft(t *testing.T, id string) {
	t.Helper()
	if ids := List(t); len(ids) != 0 {
		t.Errorf("list -q = %q, want none", ids)
	}
	if _, err := os.Lstat(filepath.Join(Root(t), id)); err == nil {
		t.Errorf("state entry %s left behind", filepath.Join(Root(t), id))
	}
	if d := cgroupDirs(id); len(d) != 0 {
		t.Errorf("cgroups left behind: %q", d)
	}
}
