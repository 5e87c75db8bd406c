package container

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/state"
)

// This file holds the root end-to-end harness shared by the pause, ps,
// update and events tests: a freshly built gantry-oci, a busybox bundle and
// a container in its own --root and cgroup, force-deleted at the end.

// rt is one gantry-oci binary with its own --root.
type rt struct {
	t    *testing.T
	bin  string
	root string
}

// newRT skips unless root with busybox, and builds gantry-oci into a temp dir.
func newRT(t *testing.T) *rt {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates containers and cgroups")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox (busybox-static) for the container rootfs")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "gantry-oci")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/gantry-project/gantry/cmd/gantry-oci")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build gantry-oci: %v: %s", err, out)
	}
	return &rt{t: t, bin: bin, root: filepath.Join(dir, "root")}
}

// run runs gantry-oci with stdin and returns stdout, stderr and the exit
// status. Output goes to files so that a container holding its stdio does
// not keep run waiting.
func (r *rt) runIn(stdin string, args ...string) (string, string, int) {
	r.t.Helper()
	dir := r.t.TempDir()
	outF, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer outF.Close()
	errF, err := os.Create(filepath.Join(dir, "err"))
	if err != nil {
		r.t.Fatal(err)
	}
	defer errF.Close()
	cmd := exec.Command(r.bin, append([]string{"--root", r.root}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Stdout, cmd.Stderr = outF, errF
	code := 0
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			r.t.Fatalf("run gantry-oci %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	out, _ := os.ReadFile(outF.Name())
	serr, _ := os.ReadFile(errF.Name())
	return string(out), string(serr), code
}

func (r *rt) run(args ...string) (string, string, int) {
	r.t.Helper()
	return r.runIn("", args...)
}

// ok runs args and fails the test unless they succeed.
func (r *rt) ok(args ...string) string {
	r.t.Helper()
	out, serr, code := r.run(args...)
	if code != 0 {
		r.t.Fatalf("gantry-oci %s: exit %d: %s", strings.Join(args, " "), code, serr)
	}
	return out
}

// fails runs args and checks for a non-zero exit with a one-line error
// that contains every string of want.
func (r *rt) fails(args []string, want ...string) {
	r.t.Helper()
	_, serr, code := r.run(args...)
	if code == 0 {
		r.t.Errorf("gantry-oci %s: succeeded, want an error", strings.Join(args, " "))
		return
	}
	if n := strings.Count(strings.TrimSpace(serr), "\n"); n != 0 {
		r.t.Errorf("gantry-oci %s: want a one-line error, got %q", strings.Join(args, " "), serr)
	}
	for _, w := range want {
		if !strings.Contains(serr, w) {
			r.t.Errorf("gantry-oci %s: error %q does not mention %q", strings.Join(args, " "), strings.TrimSpace(serr), w)
		}
	}
}

// ctr is a container made by newContainer.
type ctr struct {
	id     string
	cgroup string // linux.cgroupsPath, "/gantry-test-<random>"
	pid    int
}

// newContainer creates (and with start, starts) a container whose init runs
// args in a busybox rootfs, in a unique cgroup. edit may change the spec.
// The container is force-deleted at the end of the test, and its cgroup
// directories must be gone then.
func (r *rt) newContainer(start bool, edit func(*specs.Spec), args ...string) *ctr {
	r.t.Helper()
	return r.newContainerFiles(start, edit, nil, args...)
}

// newContainerFiles is newContainer with extra files in the rootfs: path
// (relative to the rootfs) -> content; a path ending in "/" is a directory,
// one ending in "*" an executable file, one ending in "|" a FIFO (the "*"
// or "|" is not part of the name).
func (r *rt) newContainerFiles(start bool, edit func(*specs.Spec), files map[string]string, args ...string) *ctr {
	r.t.Helper()
	c, bundle := r.newBundle(edit, files, args...)
	r.t.Cleanup(func() { r.remove(c) })
	r.ok("create", "--bundle", bundle, c.id)
	if start {
		r.ok("start", c.id)
	}
	st := r.state(c.id)
	c.pid = st.Pid
	return c
}

// newBundle writes the bundle newContainerFiles creates its container
// from, and returns the container's id and cgroup (no pid) and the bundle.
func (r *rt) newBundle(edit func(*specs.Spec), files map[string]string, args ...string) (*ctr, string) {
	r.t.Helper()
	t := r.t
	var rnd [4]byte
	rand.Read(rnd[:])
	suffix := hex.EncodeToString(rnd[:])
	c := &ctr{id: "gt-" + suffix, cgroup: "/gantry-test-" + suffix}
	bundle := t.TempDir()
	bin := filepath.Join(bundle, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"sh", "sleep", "dd", "cat"} {
		if err := os.Symlink("busybox", filepath.Join(bin, a)); err != nil {
			t.Fatal(err)
		}
	}
	for path, content := range files {
		full := filepath.Join(bundle, "rootfs", path)
		if strings.HasSuffix(path, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if strings.HasSuffix(full, "|") {
			if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mkfifo(strings.TrimSuffix(full, "|"), 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		mode := os.FileMode(0o644)
		if strings.HasSuffix(full, "*") {
			full, mode = strings.TrimSuffix(full, "*"), 0o755
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(r.bin, "spec")
	cmd.Dir = bundle
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("gantry-oci spec: %v: %s", err, out)
	}
	cfgPath := filepath.Join(bundle, "config.json")
	raw, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		t.Fatal(err)
	}
	s.Process.Args = args
	s.Process.Terminal = false
	s.Linux.CgroupsPath = c.cgroup
	if edit != nil {
		edit(&s)
	}
	raw, _ = json.Marshal(&s)
	if err := os.WriteFile(cfgPath, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return c, bundle
}

// remove force-deletes c and checks that its cgroup directories are gone.
func (r *rt) remove(c *ctr) {
	t := r.t
	if _, serr, code := r.run("delete", "--force", c.id); code != 0 {
		t.Errorf("delete --force %s: exit %d: %s", c.id, code, serr)
	}
	left, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(c.cgroup, "/")))
	for _, d := range left {
		t.Errorf("cgroup %s is left after delete --force", d)
		os.Remove(d)
	}
}

func (r *rt) state(id string) State {
	r.t.Helper()
	var st State
	if err := json.Unmarshal([]byte(r.ok("state", id)), &st); err != nil {
		r.t.Fatalf("state %s: %v", id, err)
	}
	return st
}

// cgroupFile reads file of controller ctrl of c's cgroup (v1 layout).
func (c *ctr) cgroupFile(t *testing.T, ctrl, file string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", ctrl, c.cgroup, file))
	if err != nil {
		t.Fatalf("read %s cgroup file: %v", ctrl, err)
	}
	return string(bytes.TrimSpace(b))
}

// v1 skips unless the host has the v1 controllers the checks read.
func v1(t *testing.T, ctrls ...string) {
	t.Helper()
	for _, c := range ctrls {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", c, "cgroup.procs")); err != nil {
			t.Skipf("needs a cgroup v1 %s hierarchy at /sys/fs/cgroup/%s", c, c)
		}
	}
}

func TestRootPauseResume(t *testing.T) {
	r := newRT(t)
	c := r.newContainer(true, nil, "sleep", "1000")
	if st := r.state(c.id); st.Status != state.Running {
		t.Fatalf("status after start: %s, want running", st.Status)
	}
	r.fails([]string{"resume", c.id}, c.id, "running")

	r.ok("pause", c.id)
	if st := r.state(c.id); st.Status != state.Paused {
		t.Errorf("status after pause: %s, want paused", st.Status)
	}
	if _, err := os.Stat("/sys/fs/cgroup/freezer/cgroup.procs"); err == nil {
		if got := c.cgroupFile(t, "freezer", "freezer.state"); got != "FROZEN" {
			t.Errorf("freezer.state after pause: %s, want FROZEN", got)
		}
	}
	r.fails([]string{"pause", c.id}, c.id, "paused")
	if st := r.state(c.id); st.Status != state.Paused {
		t.Errorf("status after a refused second pause: %s, want paused", st.Status)
	}

	r.ok("resume", c.id)
	if st := r.state(c.id); st.Status != state.Running {
		t.Errorf("status after resume: %s, want running", st.Status)
	}

	r.ok("kill", c.id, "KILL")
	for i := 0; r.state(c.id).Status != state.Stopped; i++ {
		if i == 1000 {
			t.Fatal("container did not stop after SIGKILL")
		}
		sleepBriefly()
	}
	r.fails([]string{"pause", c.id}, c.id, "stopped")
	r.fails([]string{"resume", c.id}, c.id, "stopped")
	r.fails([]string{"pause", "gt-does-not-exist"}, "gt-does-not-exist", "not found")
}

func TestRootPauseCreated(t *testing.T) {
	r := newRT(t)
	c := r.newContainer(false, nil, "sleep", "1000")
	r.fails([]string{"pause", c.id}, c.id, "created")
	if st := r.state(c.id); st.Status != state.Created {
		t.Errorf("status after refused pause: %s, want created", st.Status)
	}
}
