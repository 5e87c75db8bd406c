package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/test/bundle"
)

// hookScript saves the state it reads on stdin as $1.json and appends its
// kind ($2) to the file order next to it. It runs under the host's /bin/sh
// (and, for startContainer, the container's busybox sh).
const hookScript = `#!/bin/sh
cat > "$1.json" || exit 1
echo "$2" >> "$(dirname "$1")/order"
`

// hookKinds lists the hooks in the order the lifecycle runs them.
var hookKinds = []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}

// waitFile polls until path exists; a safety deadline, not a timing
// assertion (startContainer hooks run in the init after start returned).
func waitFile(t *testing.T, path string) bool {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readHookState(t *testing.T, dir, kind string) *specs.State {
	t.Helper()
	path := filepath.Join(dir, kind+".json")
	if !waitFile(t, path) {
		t.Errorf("%s hook did not run: no %s", kind, path)
		return nil
	}
	var data []byte
	var st specs.State
	// The hook may still be writing: retry until the JSON is whole.
	deadline := time.Now().Add(10 * time.Second)
	for {
		data, _ = os.ReadFile(path)
		err := json.Unmarshal(data, &st)
		if err == nil {
			return &st
		}
		if time.Now().After(deadline) {
			t.Errorf("%s hook: state on stdin %q: %v", kind, data, err)
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestHooks runs every hook but startContainer, whose path resolves in the
// container; TestHookStartContainer adds it.
func TestHooks(t *testing.T) { testHooks(t, false) }

func TestHookStartContainer(t *testing.T) { testHooks(t, true) }

func testHooks(t *testing.T, withStart bool) {
	markers := t.TempDir()
	b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	hostScript := filepath.Join(b.Dir, "hook.sh")
	if err := os.WriteFile(hostScript, []byte(hookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	// startContainer hooks resolve in the container: the same script in
	// the rootfs, writing to the marker directory bind-mounted at /markers.
	if err := os.WriteFile(filepath.Join(b.Rootfs(), "hook.sh"), []byte(hookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(b.Rootfs(), "markers"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{"PATH=/usr/bin:/bin"}
	hostHook := func(kind string) []specs.Hook {
		return []specs.Hook{{Path: hostScript, Args: []string{"hook.sh", filepath.Join(markers, kind), kind}, Env: env}}
	}
	b.Spec.Mounts = append(b.Spec.Mounts, specs.Mount{Destination: "/markers", Type: "bind", Source: markers, Options: []string{"bind"}})
	b.Spec.Hooks = &specs.Hooks{
		Prestart:        hostHook("prestart"), //nolint:staticcheck // deprecated, still run
		CreateRuntime:   hostHook("createRuntime"),
		CreateContainer: hostHook("createContainer"),
		Poststart:       hostHook("poststart"),
		Poststop:        hostHook("poststop"),
	}
	kinds := hookKinds
	if withStart {
		b.Spec.Hooks.StartContainer = []specs.Hook{{Path: "/hook.sh", Args: []string{"hook.sh", "/markers/startContainer", "startContainer"},
			Env: env}}
	} else {
		kinds = []string{"prestart", "createRuntime", "createContainer", "poststart", "poststop"}
	}
	// runc 1.1 runs poststart hooks during create, before the process
	// starts (fixed in runc 1.2); they are not checked there.
	poststart := !runtimeIsRunc
	if !poststart {
		b.Spec.Hooks.Poststart = nil
		var k []string
		for _, kind := range kinds {
			if kind != "poststart" {
				k = append(k, kind)
			}
		}
		kinds = k
	}
	b.Write()

	mustRun(t, "create", "--bundle", b.Dir, b.ID)
	s := GetState(t, b.ID)
	created := map[string]bool{"prestart": true, "createRuntime": true, "createContainer": true}
	for _, kind := range hookKinds[:3] {
		st := readHookState(t, markers, kind)
		if st == nil {
			continue
		}
		want := "created"
		if runtimeIsRunc && created[kind] {
			// runc 1.1 passes "creating" while the container is made
			want = "creating"
		}
		pid := s.PID
		if runtimeIsRunc && kind == "createContainer" {
			// runc 1.1 reports the init's own view of its pid (1 in its
			// pid namespace), not the host's
			pid = 1
		}
		if string(st.Status) != want || st.ID != b.ID || st.Pid != pid {
			t.Errorf("%s hook state: status %q id %q pid %d, want %q %q %d", kind, st.Status, st.ID, st.Pid, want, b.ID, pid)
		}
		if got, _ := filepath.EvalSymlinks(st.Bundle); got != b.Dir {
			t.Errorf("%s hook state: bundle %q, want %q", kind, st.Bundle, b.Dir)
		}
	}
	for _, kind := range kinds[3:] {
		if _, err := os.Stat(filepath.Join(markers, kind+".json")); err == nil {
			t.Errorf("%s hook ran before start", kind)
		}
	}

	mustRun(t, "start", b.ID)
	if !withStart {
	} else if st := readHookState(t, markers, "startContainer"); st != nil {
		pid := s.PID
		if runtimeIsRunc {
			// runc 1.1 reports the init's own view of its pid (1 in its
			// pid namespace), not the host's
			pid = 1
		}
		if st.Status != "created" || st.Pid != pid {
			t.Errorf("startContainer hook state: status %q pid %d, want created %d", st.Status, st.Pid, pid)
		}
	}
	if !poststart {
	} else if st := readHookState(t, markers, "poststart"); st != nil && (st.Status != "running" || st.Pid != s.PID) {
		t.Errorf("poststart hook state: status %q pid %d, want running %d", st.Status, st.Pid, s.PID)
	}
	if _, err := os.Stat(filepath.Join(markers, "poststop.json")); err == nil {
		t.Errorf("poststop hook ran before delete")
	}

	mustRun(t, "kill", b.ID, "KILL")
	WaitStatus(t, b.ID, "stopped")
	mustRun(t, "delete", b.ID)
	if st := readHookState(t, markers, "poststop"); st != nil && (st.Status != "stopped" || st.ID != b.ID) {
		t.Errorf("poststop hook state: status %q id %q, want stopped %q", st.Status, st.ID, b.ID)
	}

	// Each ran once, in lifecycle order (startContainer and poststart
	// may swap: the runtime does not wait for the init's hooks).
	data, _ := os.ReadFile(filepath.Join(markers, "order"))
	order := strings.Fields(string(data))
	if len(order) == 6 && order[3] == "poststart" && order[4] == "startContainer" {
		order[3], order[4] = order[4], order[3]
	}
	if strings.Join(order, " ") != strings.Join(kinds, " ") {
		t.Errorf("hooks ran in order %q, want %q", data, kinds)
	}
}

func TestHookFailingPrestart(t *testing.T) {
	markers := t.TempDir()
	b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	script := filepath.Join(b.Dir, "fail.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho 'prestart says no' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	okScript := filepath.Join(b.Dir, "hook.sh")
	if err := os.WriteFile(okScript, []byte(hookScript), 0o755); err != nil {
		t.Fatal(err)
	}
	b.Spec.Hooks = &specs.Hooks{
		Prestart: []specs.Hook{{Path: script}}, //nolint:staticcheck // deprecated, still run
		CreateRuntime: []specs.Hook{{Path: okScript, Args: []string{"hook.sh", filepath.Join(markers, "createRuntime"), "createRuntime"},
			Env: []string{"PATH=/usr/bin:/bin"}}},
	}
	b.Write()
	_, stderr, code := Run(t, "create", "--bundle", b.Dir, b.ID)
	if code == 0 {
		t.Fatalf("create with a failing prestart hook: exit 0, want an error")
	}
	checkOneErrorLine(t, stderr)
	if !strings.Contains(stderr, "hook") {
		t.Errorf("error %q does not name the hook", stderr)
	}
	if runtimeIsRunc {
		t.Log("runc 1.1 says \"error running hook #0\" without the hook's kind; not checked")
	} else if !strings.Contains(stderr, "prestart") || !strings.Contains(stderr, script) {
		t.Errorf("error %q does not name the prestart hook %s", stderr, script)
	}
	if _, err := os.Stat(filepath.Join(markers, "createRuntime.json")); err == nil {
		t.Errorf("createRuntime hook ran after prestart failed")
	}
	checkNothingLeft(t, b.ID)
	if p := containerProcs(b.ID); len(p) != 0 {
		t.Errorf("processes %v left in the container's cgroup", p)
	}
}

func TestHookFailingPoststart(t *testing.T) {
	skipIfRunc(t, "a failing poststart hook makes start fail and kills the container; the spec says it only warns")
	b := bundle.New(t, bundle.Args("/probe", "sleep", "600"))
	script := filepath.Join(b.Dir, "fail.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b.Spec.Hooks = &specs.Hooks{Poststart: []specs.Hook{{Path: script}}}
	b.Write()
	mustRun(t, "create", "--bundle", b.Dir, b.ID)
	s := GetState(t, b.ID)
	_, stderr, code := Run(t, "start", b.ID)
	if code != 0 {
		t.Fatalf("start with a failing poststart hook: exit %d, want 0 (only a warning): %s", code, stderr)
	}
	if !strings.Contains(stderr, "poststart") {
		t.Errorf("start's stderr %q has no warning about the poststart hook", stderr)
	}
	if now := GetState(t, b.ID); now.Status != "running" || now.PID != s.PID {
		t.Errorf("after start: state %+v, want running with pid %d", now, s.PID)
	}
}

func TestHookRelativePath(t *testing.T) {
	b := bundle.New(t, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "hook.sh"}}}
	})
	_, stderr, code := Run(t, "create", "--bundle", b.Dir, b.ID)
	if code == 0 {
		t.Fatalf("create with a relative hook path: exit 0, want an error")
	}
	checkOneErrorLine(t, stderr)
	checkNothingLeft(t, b.ID)
}
