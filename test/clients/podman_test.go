package clients

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// podmanEnv is one private podman setup: storage, run and tmp
// directories, configuration files, and the runtime wrapper conmon runs.
// podman has no daemon; every call gets the same flags and environment.
type podmanEnv struct {
	t            *testing.T
	dir          string
	runtime      string
	callLog      string
	cgroupParent string // below every cgroup hierarchy's root
	global       []string
	env          []string
	names        []string
}

// newPodman prepares a podman of t's own and loads the busybox image into
// its storage; the cleanup removes its containers, conmons, mounts,
// cgroups and directories.
func newPodman(t *testing.T) *podmanEnv {
	t.Helper()
	requireSuite(t, "podman", "conmon")
	dir, err := os.MkdirTemp("", "gpod-")
	if err != nil {
		t.Fatal(err)
	}
	e := &podmanEnv{t: t, dir: dir, cgroupParent: "/gantry-podman-" + randomSuffix()}
	t.Cleanup(e.cleanup)
	p := func(elem ...string) string { return filepath.Join(append([]string{dir}, elem...)...) }
	// podman runs the runtime without --root (its default state directory,
	// /run/runc for runc); --runtime-flag root=... would reach every call
	// but those of the exit command (`podman container cleanup`), which
	// then deletes nothing. The wrapper adds --root instead.
	e.runtime, e.callLog = writeRuntimeWrapper(t, dir, p("runtime-root"))
	for _, d := range []string{"root", "runroot", "tmp", "imgtmp", "home/.config/containers", "net", "hooks", "volumes", "runtime-root"} {
		if err := os.MkdirAll(p(d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		// lock_type "file" keeps the locks under tmp_dir instead of the
		// host-wide /dev/shm/libpod_lock segment.
		"containers.conf": fmt.Sprintf(`[containers]
log_driver = "k8s-file"
# podman raises RLIMIT_NOFILE and RLIMIT_NPROC for root by default (to
# 1048576), which the runtime cannot apply where the hard limits are lower
# and CAP_SYS_RESOURCE is missing; soft = hard = min(1024, current soft).
default_ulimits = [%q, %q]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = %q
lock_type = "file"
num_locks = 256
tmp_dir = %q
static_dir = %q
volume_path = %q
hooks_dir = [%q]
conmon_path = ["/usr/bin/conmon", "/usr/libexec/podman/conmon"]

[network]
network_config_dir = %q
`, ulimit("nofile", unix.RLIMIT_NOFILE), ulimit("nproc", unix.RLIMIT_NPROC), p("events.log"), p("tmp"), p("root", "libpod"), p("volumes"), p("hooks"), p("net")),
		"storage.conf": fmt.Sprintf(`[storage]
driver = "vfs"
graphroot = %q
runroot = %q
`, p("root"), p("runroot")),
		"registries.conf": `unqualified-search-registries = []
short-name-mode = "disabled"
`,
		"policy.json": `{"default": [{"type": "insecureAcceptAnything"}]}` + "\n",
	}
	for name, content := range files {
		if err := os.WriteFile(p(name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// containers/image reads $HOME/.config/containers/policy.json before
	// /etc/containers/policy.json; podman 4.3 has no variable for it.
	if err := os.WriteFile(p("home/.config/containers/policy.json"), []byte(files["policy.json"]), 0o600); err != nil {
		t.Fatal(err)
	}
	e.env = []string{
		"CONTAINERS_CONF=" + p("containers.conf"),
		"CONTAINERS_STORAGE_CONF=" + p("storage.conf"),
		"CONTAINERS_REGISTRIES_CONF=" + p("registries.conf"),
		"HOME=" + p("home"),
		"XDG_CONFIG_HOME=" + p("home/.config"),
		"TMPDIR=" + p("imgtmp"),
	}
	e.global = []string{
		"--root", p("root"),
		"--runroot", p("runroot"),
		"--tmpdir", p("tmp"),
		"--storage-driver", "vfs",
		"--cgroup-manager", "cgroupfs",
		"--runtime", e.runtime,
		"--events-backend", "file",
		"--network-config-dir", p("net"),
		"--hooks-dir", p("hooks"),
		"--volumepath", p("volumes"),
	}
	r := e.podman("load", "--input", imageArchive)
	if r.code != 0 || !strings.Contains(r.stdout+r.stderr, ImageName) {
		t.Fatalf("load the busybox image: want %s loaded, got %s", ImageName, r)
	}
	return e
}

// ulimit returns a podman ulimit option for resource (named name) that
// only lowers this process's limits: soft and hard at min(1024, soft).
func ulimit(name string, resource int) string {
	var rl unix.Rlimit
	if err := unix.Getrlimit(resource, &rl); err != nil {
		return name + "=1024:1024"
	}
	v := min(rl.Cur, 1024)
	return fmt.Sprintf("%s=%d:%d", name, v, v)
}

// podman runs podman with the env's flags and environment.
func (e *podmanEnv) podman(args ...string) result {
	e.t.Helper()
	return runCommandShown(e.t, e.env, nil, len(args), "podman", append(append([]string(nil), e.global...), args...)...)
}

// mustPodman runs podman and fails the test unless it exits 0; it returns
// stdout.
func (e *podmanEnv) mustPodman(args ...string) string {
	e.t.Helper()
	r := e.podman(args...)
	if r.code != 0 {
		e.t.Fatalf("%s", r)
	}
	return r.stdout
}

// runArgs returns `run` with the flags every test container gets, then
// flags, the image and cmd.
func (e *podmanEnv) runArgs(flags []string, cmd ...string) []string {
	args := []string{"run", "--network", "none", "--pull", "never", "--cgroup-parent", e.cgroupParent}
	args = append(args, flags...)
	args = append(args, ImageName)
	return append(args, cmd...)
}

// run runs a container in the foreground (--rm) and returns what podman did.
func (e *podmanEnv) run(flags []string, cmd ...string) result {
	e.t.Helper()
	return e.podman(e.runArgs(append([]string{"--rm"}, flags...), cmd...)...)
}

// newName returns a container name unique to this test process and
// records it for the cleanup.
func (e *podmanEnv) newName(name string) string {
	n := name + "-" + randomSuffix()
	e.names = append(e.names, n)
	return n
}

// diag returns the runtime calls and the runtime's own logs (conmon passes
// --log <bundle>/oci-log to runtimes it knows take JSON logs).
func (e *podmanEnv) diag() string {
	return fmt.Sprintf("\n=== runtime calls (%s):\n%s\n=== runtime logs:%s\n=== podman events (end):\n%s",
		runtimePath, tailFile(e.callLog, 3000),
		runtimeLogs(filepath.Join(e.dir, "root", "vfs-containers", "*", "userdata", "oci-log"),
			filepath.Join(e.dir, "runroot", "vfs-containers", "*", "userdata", "oci-log")),
		tailFile(filepath.Join(e.dir, "events.log"), 1500))
}

func (e *podmanEnv) cleanup() {
	t := e.t
	if t.Failed() {
		t.Logf("diagnostics for the failures above:%s", e.diag())
	}
	if e.global != nil {
		e.podman("rm", "--all", "--force", "--time", "0")
	}
	clean := !t.Failed()
	for _, k := range reapProcessesMentioning(e.dir) {
		t.Logf("killed leftover process %s", k)
	}
	// podman leaves the conmon cgroup below the parent; a container's own
	// cgroup (libpod-<id>) left behind is a defect.
	for _, d := range removeCgroup(t, e.cgroupParent) {
		if clean && strings.Contains(filepath.Base(d), "libpod-") {
			t.Errorf("container cgroup %s left after podman rm", d)
		}
	}
	unmountUnder(t, e.dir, clean)
	if err := os.RemoveAll(e.dir); err != nil {
		t.Errorf("remove %s: %v", e.dir, err)
	}
}

func TestPodmanRunEcho(t *testing.T) {
	e := newPodman(t)
	r := e.run(nil, "echo", "hi")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "hi" {
		t.Fatalf("want exit 0 and output %q, got %s", "hi", r)
	}
	if out := e.mustPodman("ps", "--all", "--quiet"); strings.TrimSpace(out) != "" {
		t.Errorf("containers left after run --rm: %q", out)
	}
}

func TestPodmanExitCodes(t *testing.T) {
	e := newPodman(t)
	for _, tc := range []struct {
		name string
		cmd  []string
		want int
	}{
		{"zero", []string{"true"}, 0},
		{"three", []string{"sh", "-c", "exit 3"}, 3},
		// podman maps the runtime's error for a missing executable to 127
		// by matching its message ("no such file or directory", "executable
		// file not found").
		{"missing executable", []string{"/no/such/binary"}, 127},
		// ... and a non-executable file to 126 ("permission denied").
		{"not executable", []string{"/etc/passwd"}, 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run(nil, tc.cmd...)
			if r.code != tc.want {
				t.Errorf("podman run %v: exit %d, want %d: %s", tc.cmd, r.code, tc.want, r)
			}
		})
	}
}

func TestPodmanDetachExecLogsStop(t *testing.T) {
	e := newPodman(t)
	name := e.newName("detach")
	// The trap shows that stop delivered SIGTERM through the runtime
	// (exit 7) rather than killing the container after the timeout (137).
	e.mustPodman(e.runArgs([]string{"--detach", "--name", name},
		"sh", "-c", "echo started; trap 'echo stopping; exit 7' TERM; while true; do sleep 0.1; done")...)
	waitFor(t, func() string { return "container " + name + " to run" }, func() bool {
		return strings.TrimSpace(e.podman("inspect", "--format", "{{.State.Status}}", name).stdout) == "running"
	})

	r := e.podman("exec", name, "sh", "-c", "echo in; exit 5")
	if r.code != 5 || strings.TrimSpace(r.stdout) != "in" {
		t.Errorf("exec: want output %q and exit 5, got %s", "in", r)
	}
	r = e.podman("exec", "--user", "1000:1000", "--workdir", "/tmp", "--env", "X=y", name, "sh", "-c", `echo "$(id -u) $(pwd) $X"`)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "1000 /tmp y" {
		t.Errorf("exec --user --workdir --env: want %q, got %s", "1000 /tmp y", r)
	}

	waitFor(t, func() string { return "podman logs " + name + " to show the container's output" }, func() bool {
		return strings.Contains(e.podman("logs", name).stdout, "started")
	})

	r = e.podman("stop", "--time", "60", name)
	if r.code != 0 {
		t.Fatalf("stop: %s", r)
	}
	if got := strings.TrimSpace(e.mustPodman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)); got != "exited 7" {
		t.Errorf("after stop: status and exit code %q, want %q (SIGTERM reached the container's trap)", got, "exited 7")
	}
	if out := e.mustPodman("logs", name); !strings.Contains(out, "stopping") {
		t.Errorf("logs after stop: no %q in %q", "stopping", out)
	}
	e.mustPodman("rm", name)
	if out := e.mustPodman("ps", "--all", "--quiet", "--filter", "name="+name); strings.TrimSpace(out) != "" {
		t.Errorf("container %s still listed after rm: %q", name, out)
	}
}

func TestPodmanUser(t *testing.T) {
	e := newPodman(t)
	r := e.run([]string{"--user", "1000:1000"}, "sh", "-c", "id -u; id -g")
	if r.code != 0 || strings.Join(strings.Fields(r.stdout), " ") != "1000 1000" {
		t.Errorf("--user 1000:1000: want uid and gid 1000, got %s", r)
	}
}

func TestPodmanReadOnly(t *testing.T) {
	e := newPodman(t)
	r := e.run([]string{"--read-only"}, "sh", "-c", "touch /probe-file; echo root=$?; touch /tmp/probe-file; echo tmp=$?")
	if r.code != 0 {
		t.Fatalf("--read-only: %s", r)
	}
	if !strings.Contains(r.stdout, "root=1") {
		t.Errorf("--read-only: writing / did not fail: %s", r)
	}
	if !strings.Contains(r.stderr+r.stdout, "Read-only file system") {
		t.Errorf("--read-only: no EROFS from writing /: %s", r)
	}
	// podman mounts a tmpfs on /tmp of a read-only container
	// (--read-only-tmpfs, the default).
	if !strings.Contains(r.stdout, "tmp=0") {
		t.Errorf("--read-only: writing /tmp failed: %s", r)
	}
	r = e.run(nil, "sh", "-c", "touch /probe-file && echo writable")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "writable" {
		t.Errorf("without --read-only, writing / failed: %s", r)
	}
}

// capEff returns the CapEff line's value of a /proc/self/status output.
func capEff(status string) string {
	for _, l := range strings.Split(status, "\n") {
		if v, ok := strings.CutPrefix(l, "CapEff:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestPodmanCapDropAll(t *testing.T) {
	e := newPodman(t)
	r := e.run([]string{"--cap-drop", "ALL"}, "cat", "/proc/self/status")
	if r.code != 0 {
		t.Fatalf("--cap-drop ALL: %s", r)
	}
	if got := capEff(r.stdout); got != "0000000000000000" {
		t.Errorf("--cap-drop ALL: CapEff %q, want 0000000000000000", got)
	}
	r = e.run(nil, "cat", "/proc/self/status")
	if got := capEff(r.stdout); r.code != 0 || got == "" || got == "0000000000000000" {
		t.Errorf("default capabilities: CapEff %q, want podman's non-empty default set: %s", got, r)
	}
}

// cgroupFile returns the shell command printing the container's own cgroup
// v1 file ctrl/file (podman mounts the container's cgroups at
// /sys/fs/cgroup).
func cgroupFile(ctrl, file string) string {
	return "cat /sys/fs/cgroup/" + ctrl + "/" + file
}

func TestPodmanMemory(t *testing.T) {
	if !hasV1Controller("memory") {
		t.Skip("the memory controller is not a cgroup v1 hierarchy here")
	}
	e := newPodman(t)
	r := e.run([]string{"--memory", "64m"}, "sh", "-c", cgroupFile("memory", "memory.limit_in_bytes"))
	if r.code != 0 || strings.TrimSpace(r.stdout) != strconv.Itoa(64<<20) {
		t.Errorf("--memory 64m: container's memory.limit_in_bytes: want %d, got %s", 64<<20, r)
	}
}

func TestPodmanPidsLimit(t *testing.T) {
	if !hasV1Controller("pids") {
		t.Skip("the pids controller is not a cgroup v1 hierarchy here")
	}
	e := newPodman(t)
	r := e.run([]string{"--pids-limit", "20"}, "sh", "-c", cgroupFile("pids", "pids.max"))
	if r.code != 0 || strings.TrimSpace(r.stdout) != "20" {
		t.Errorf("--pids-limit 20: container's pids.max: want 20, got %s", r)
	}
	// The limit holds: of 30 background sleeps, the shell starts fewer
	// than 20 before a fork fails (busybox sh then exits with "can't fork").
	r = e.run([]string{"--pids-limit", "20"}, "sh", "-c", "for i in $(seq 30); do sleep 30 & echo started; done")
	started := strings.Count(r.stdout, "started")
	if started == 0 || started >= 20 || !strings.Contains(r.stderr, "can't fork") {
		t.Errorf("--pids-limit 20: %d of 30 background processes started, want 1..19 and a fork failure: %s", started, r)
	}
}

func TestPodmanEnvWorkdir(t *testing.T) {
	e := newPodman(t)
	r := e.run([]string{"--env", "FOO=bar baz", "--workdir", "/etc"}, "sh", "-c", `echo "$FOO"; pwd`)
	if r.code != 0 || r.stdout != "bar baz\n/etc\n" {
		t.Errorf("-e FOO='bar baz' -w /etc: want %q, got %s", "bar baz\n/etc\n", r)
	}
}

func TestPodmanTTY(t *testing.T) {
	e := newPodman(t)
	args := append(append([]string(nil), e.global...), e.runArgs([]string{"--rm", "--tty"},
		"sh", "-c", "tty; [ -t 0 ] && [ -t 1 ] && echo both-ttys; exit 4")...)
	r := runInTerminal(t, e.env, "podman", args...)
	if r.code != 4 {
		t.Errorf("podman run -t: exit %d, want 4: %s", r.code, r)
	}
	if !containsLineMatching(r.stdout, isPtsPath) {
		t.Errorf("podman run -t: tty printed no /dev/pts/N: %s", r)
	}
	if !strings.Contains(r.stdout, "both-ttys") {
		t.Errorf("podman run -t: stdout is not a terminal: %s", r)
	}
}

// startDetached runs a long-lived detached container named after name and
// waits until podman reports it running; it returns the container's name
// and the host pid of its init.
func (e *podmanEnv) startDetached(name string, flags ...string) (string, int) {
	e.t.Helper()
	n := e.newName(name)
	e.mustPodman(e.runArgs(append([]string{"--detach", "--name", n}, flags...), "sleep", "1000")...)
	waitFor(e.t, func() string { return "container " + n + " to run" }, func() bool {
		return strings.TrimSpace(e.podman("inspect", "--format", "{{.State.Status}}", n).stdout) == "running"
	})
	pid, err := strconv.Atoi(strings.TrimSpace(e.mustPodman("inspect", "--format", "{{.State.Pid}}", n)))
	if err != nil || pid <= 0 {
		e.t.Fatalf("container %s: no pid (%v)", n, err)
	}
	return n, pid
}

func TestPodmanPauseUnpause(t *testing.T) {
	e := newPodman(t)
	name, pid := e.startDetached("pause")
	e.mustPodman("pause", name)
	if got := strings.TrimSpace(e.mustPodman("inspect", "--format", "{{.State.Status}}", name)); got != "paused" {
		t.Errorf("after pause: status %q, want paused", got)
	}
	if hasV1Controller("freezer") {
		if cg, err := cgroupOf(pid, "freezer"); err == nil {
			b, _ := os.ReadFile(filepath.Join("/sys/fs/cgroup/freezer", cg, "freezer.state"))
			if got := strings.TrimSpace(string(b)); got != "FROZEN" {
				t.Errorf("paused container %s: freezer.state %q, want FROZEN", name, got)
			}
		}
	}
	e.mustPodman("unpause", name)
	if got := strings.TrimSpace(e.mustPodman("inspect", "--format", "{{.State.Status}}", name)); got != "running" {
		t.Errorf("after unpause: status %q, want running", got)
	}
}

func TestPodmanUpdate(t *testing.T) {
	if !hasV1Controller("memory") {
		t.Skip("the memory controller is not a cgroup v1 hierarchy here")
	}
	e := newPodman(t)
	name, pid := e.startDetached("update", "--memory", "64m")
	cg, err := cgroupOf(pid, "memory")
	if err != nil {
		t.Fatal(err)
	}
	limitFile := filepath.Join("/sys/fs/cgroup/memory", cg, "memory.limit_in_bytes")
	read := func() string { b, _ := os.ReadFile(limitFile); return strings.TrimSpace(string(b)) }
	if got := read(); got != strconv.Itoa(64<<20) {
		t.Fatalf("before update: %s = %s, want %d", limitFile, got, 64<<20)
	}
	// podman update hands the new resources to the runtime's `update`.
	e.mustPodman("update", "--memory", "128m", name)
	if got := read(); got != strconv.Itoa(128<<20) {
		t.Errorf("after podman update --memory 128m: %s = %s, want %d", limitFile, got, 128<<20)
	}
}
