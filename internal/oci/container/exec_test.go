package container

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// These root tests cover exec's two paths: the fast path, where the C
// bootstrap sets up the process and executes it (execfast.go,
// nsexec/execproc.c), and the Go init (finishProcess), which
// GANTRY_OCI_EXEC=go forces and which uncommon processes take. Each
// attribute is observed from inside the executed process, and the same
// exec through the Go init must see the same.

// execOut runs gantry-oci with env added to the test's environment and
// extra as fds 3, 4, ... (leaked to gantry-oci, passed on only with
// --preserve-fds), with GANTRY_OCI_TRACE set; it returns stdout, stderr
// without trace lines, the path exec took ("fast" or "go") and the exit
// status.
func (r *rt) execOut(env []string, extra []*os.File, args ...string) (stdout, stderr, path string, code int) {
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
	cmd.Env = append(append(os.Environ(), "GANTRY_OCI_TRACE=1"), env...)
	cmd.Stdout, cmd.Stderr = outF, errF
	cmd.ExtraFiles = extra
	if err := cmd.Run(); err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			r.t.Fatalf("run gantry-oci %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	out, _ := os.ReadFile(outF.Name())
	serr, _ := os.ReadFile(errF.Name())
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(string(serr)), "\n") {
		if strings.HasPrefix(l, "trace ") {
			switch {
			case strings.HasSuffix(l, "exec: fast path"):
				path = "fast"
			case strings.Contains(l, "exec: go path ("):
				path = "go"
			}
			continue
		}
		if l != "" {
			lines = append(lines, l)
		}
	}
	return string(out), strings.Join(lines, "\n"), path, code
}

// bothPaths runs exec args through the fast path and through the Go init
// and fails unless the first took the fast path, the second the Go init,
// and both had the same exit status and output. It returns the fast
// path's stdout, stderr and status.
func (r *rt) bothPaths(extra []*os.File, args ...string) (string, string, int) {
	r.t.Helper()
	out, serr, code, goOut, goErr, goCode := r.bothPathsOut(extra, args...)
	if code != goCode || out != goOut || serr != goErr {
		r.t.Errorf("exec %v: the paths differ:\nfast: exit %d, stdout %q, stderr %q\ngo:   exit %d, stdout %q, stderr %q", args, code, out, serr, goCode, goOut, goErr)
	}
	return out, serr, code
}

// bothPathsOut is bothPaths without the comparison: it also returns what
// the Go init's exec printed and its status.
func (r *rt) bothPathsOut(extra []*os.File, args ...string) (string, string, int, string, string, int) {
	r.t.Helper()
	out, serr, path, code := r.execOut(nil, extra, args...)
	if path != "fast" {
		r.t.Errorf("exec %v took the %q path, want the fast path (stderr %q)", args, path, serr)
	}
	goOut, goErr, goPath, goCode := r.execOut([]string{EnvExecPath + "=go"}, extra, args...)
	if goPath != "go" {
		r.t.Errorf("exec %v with %s=go took the %q path", args, EnvExecPath, goPath)
	}
	return out, serr, code, goOut, goErr, goCode
}

// reportScript prints what an exec sets: the /proc/self/status lines of
// the identity, capabilities, no_new_privs, seccomp and signal state, the
// cwd, env, rlimits, oom_score_adj, open fds and whether mkdir is blocked.
const reportScript = `grep -E '^(` + "Umask|Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp|Seccomp_filters|SigBlk|SigIgn" + `):' /proc/self/status
echo "cwd=$(pwd)"
env | sort | sed 's/^/env /'
grep -E '^Max (open files|core file size)' /proc/self/limits
echo "oom=$(cat /proc/self/oom_score_adj)"
echo "fds=$(ls /proc/self/fd | tr '\n' ' ')"
busybox mkdir /home/u/blocked 2>&1
echo "mkdir=$?"`

func capBits(nums ...int) string {
	var m uint64
	for _, n := range nums {
		m |= 1 << n
	}
	return fmt.Sprintf("%016x", m)
}

func TestRootExecFastPathAttributes(t *testing.T) {
	r := newRT(t)
	errnoRet := uint(unix.EXDEV)
	umask := uint32(0o027)
	oom := 500
	c := r.newContainerFiles(true, func(s *specs.Spec) {
		p := s.Process
		p.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{5, 1001}, Umask: &umask}
		p.Env = []string{"PATH=/bin", "FOO=bar"}
		p.Cwd = "/home/u"
		p.NoNewPrivileges = true
		p.OOMScoreAdj = &oom
		p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 100, Hard: 200}, {Type: "RLIMIT_CORE", Soft: 1024, Hard: 4096}}
		p.Capabilities = &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"},
			Effective:   []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
			Permitted:   []string{"CAP_KILL", "CAP_NET_BIND_SERVICE"},
			Inheritable: []string{"CAP_NET_BIND_SERVICE"},
			Ambient:     []string{"CAP_NET_BIND_SERVICE"},
		}
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64},
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errnoRet}},
		}
	}, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000:u:/home/u:/bin/sh\n",
		"home/u/":    "",
	}, "/bin/sleep", "600")

	out, serr, code := r.bothPaths(nil, "exec", c.id, "/bin/sh", "-c", reportScript)
	if code != 0 {
		t.Fatalf("exec: exit %d: %s", code, serr)
	}
	got := map[string]string{}
	var env []string
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "env "); ok {
			env = append(env, v)
			continue
		}
		if k, v, ok := strings.Cut(l, ":"); ok {
			got[k] = strings.Join(strings.Fields(v), " ")
		}
		if k, v, ok := strings.Cut(l, "="); ok && !strings.Contains(k, " ") {
			got[k] = v
		}
		if f := strings.Fields(l); len(f) >= 5 && f[0] == "Max" {
			got[strings.Join(f[:len(f)-3], " ")] = f[len(f)-3] + "/" + f[len(f)-2]
		}
	}
	amb := capBits(unix.CAP_NET_BIND_SERVICE)
	want := map[string]string{
		"Uid":                "1000 1000 1000 1000",
		"Gid":                "1000 1000 1000 1000",
		"Groups":             "5 1001",
		"Umask":              "0027",
		"CapBnd":             capBits(unix.CAP_CHOWN, unix.CAP_KILL, unix.CAP_NET_BIND_SERVICE),
		"CapInh":             amb,
		"CapAmb":             amb,
		"CapPrm":             amb, // a non-root uid keeps only its ambient set across execve
		"CapEff":             amb,
		"NoNewPrivs":         "1",
		"Seccomp":            "2",
		"cwd":                "/home/u",
		"oom":                "500",
		"Max open files":     "100/200",
		"Max core file size": "1024/4096",
		"mkdir":              "1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if !strings.Contains(out, "Invalid cross-device link") {
		t.Errorf("mkdir was not refused with the profile's EXDEV:\n%s", out)
	}
	wantEnv := []string{"FOO=bar", "HOME=/home/u", "PATH=/bin"}
	var gotEnv []string
	for _, e := range env {
		if !strings.HasPrefix(e, "PWD=") && !strings.HasPrefix(e, "SHLVL=") {
			gotEnv = append(gotEnv, e)
		}
	}
	if strings.Join(gotEnv, " ") != strings.Join(wantEnv, " ") {
		t.Errorf("env = %q, want %q (HOME from the container's /etc/passwd)", gotEnv, wantEnv)
	}
	// only stdio, and the directory ls itself opened
	if fds := strings.Join(strings.Fields(got["fds"]), " "); fds != "0 1 2 3" {
		t.Errorf("open fds %q, want 0 1 2 3", fds)
	}

	// Without the compiled filter in the cache (create recorded its key),
	// exec compiles it again and still takes the fast path.
	if err := os.RemoveAll(filepath.Join(r.root, ".seccomp")); err != nil {
		t.Fatal(err)
	}
	out, serr, code = r.bothPaths(nil, "exec", c.id, "/bin/sh", "-c", "busybox mkdir /home/u/blocked 2>&1; grep Seccomp: /proc/self/status")
	if code != 0 || !strings.Contains(out, "Invalid cross-device link") || !strings.Contains(out, "Seccomp:\t2") {
		t.Errorf("exec without a cached filter: exit %d, stdout %q, stderr %q; want mkdir refused with EXDEV and Seccomp 2", code, out, serr)
	}
	if _, err := os.Stat(filepath.Join(r.root, ".seccomp")); err != nil {
		t.Errorf("the filter was not cached again: %v", err)
	}

	// An env with HOME keeps it; an uid without a passwd entry gets "/".
	out, serr, _ = r.bothPaths(nil, "exec", "--env", "HOME=/x", c.id, "/bin/sh", "-c", "echo $HOME")
	if strings.TrimSpace(out) != "/x" {
		t.Errorf("HOME with --env HOME=/x = %q (%s)", out, serr)
	}
	out, serr, _ = r.bothPaths(nil, "exec", "--user", "4242", c.id, "/bin/sh", "-c", "echo $HOME; id -u")
	if strings.Join(strings.Fields(out), " ") != "/ 4242" {
		t.Errorf("HOME and uid of --user 4242 = %q (%s), want / 4242", out, serr)
	}
	// PATH lookup with the process's env, args[0] kept.
	out, serr, _ = r.bothPaths(nil, "exec", "--env", "PATH=/nowhere:/bin", c.id, "sh", "-c", "echo $0")
	if strings.TrimSpace(out) != "sh" {
		t.Errorf("exec sh through PATH: $0 = %q (%s)", out, serr)
	}
}

func TestRootExecFastPathRoot(t *testing.T) {
	r := newRT(t)
	// gantry-oci spec's defaults: root, a few capabilities, no_new_privs.
	c := r.newContainerFiles(true, nil, map[string]string{"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"}, "/bin/sleep", "600")
	out, serr, code := r.bothPaths(nil, "exec", "--cap", "CAP_SYS_ADMIN", "--cwd", "/bin", c.id, "/bin/sh", "-c", reportScript)
	if code != 0 {
		t.Fatalf("exec: exit %d: %s", code, serr)
	}
	for _, want := range []string{"Uid:\t0\t0\t0\t0", "cwd=/bin", "env HOME=/root", "Seccomp:\t0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	st := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(l, ":\t"); ok {
			st[k] = v
		}
	}
	bnd, err := strconv.ParseUint(st["CapBnd"], 16, 64)
	if err != nil || bnd&(1<<unix.CAP_SYS_ADMIN) == 0 {
		t.Errorf("CapBnd %q lacks CAP_SYS_ADMIN given by --cap", st["CapBnd"])
	}
	if st["CapEff"] != st["CapBnd"] || st["CapPrm"] != st["CapBnd"] {
		t.Errorf("root's sets: eff %s prm %s bnd %s, want all equal", st["CapEff"], st["CapPrm"], st["CapBnd"])
	}
}

func TestRootExecFastPathErrors(t *testing.T) {
	r := newRT(t)
	c := r.newContainerFiles(true, nil, map[string]string{
		"not-elf*":   "neither ELF nor a script\n",
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
	}, "/bin/sleep", "600")
	hostDir := t.TempDir()
	dirF, err := os.Open(hostDir)
	if err != nil {
		t.Fatal(err)
	}
	defer dirF.Close()
	for _, tc := range []struct {
		name  string
		extra []*os.File
		args  []string
		code  int
		want  string
	}{
		{"missing command", nil, []string{"ID", "/bin/nope"}, 1, `gantry-oci: process.args[0]: exec "/bin/nope": stat /bin/nope: no such file or directory`},
		{"not in PATH", nil, []string{"ID", "nope"}, 1, `gantry-oci: process.args[0]: exec "nope": executable file not found in $PATH`},
		{"directory", nil, []string{"ID", "/bin"}, 1, `gantry-oci: process.args[0]: exec "/bin": is a directory`},
		{"not executable", nil, []string{"ID", "/etc/passwd"}, 1, `gantry-oci: process.args[0]: exec "/etc/passwd": permission denied`},
		{"bad cwd", nil, []string{"--cwd", "/no/such/dir", "ID", "/bin/true"}, 1, `gantry-oci: process.cwd "/no/such/dir": no such file or directory`},
		// execve itself fails after every check passed: reported on
		// stderr with 127, as a shell does.
		{"exec format", nil, []string{"ID", "/not-elf"}, 127, `gantry-oci: exec /not-elf: exec format error`},
		// CVE-2024-21626: a leaked host directory fd is closed before
		// anything runs (in the Go init, fd 8 is then one of the Go
		// runtime's own: "not a directory") ...
		{"leaked fd as cwd", []*os.File{dirF, dirF, dirF, dirF, dirF, dirF}, []string{"--cwd", "/proc/self/fd/8", "ID", "/bin/true"}, 1, `gantry-oci: process.cwd "/proc/self/fd/8": no such file or directory`},
		// ... and a preserved one as cwd is refused by the getcwd check.
		{"preserved fd as cwd", []*os.File{dirF}, []string{"--preserve-fds", "1", "--cwd", "/proc/self/fd/3", "ID", "/bin/true"}, 1,
			`gantry-oci: process.cwd "/proc/self/fd/3": resolves outside the container ("(unreachable)` + hostDir + `"): invalid argument`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"exec"}
			for _, a := range tc.args {
				if a == "ID" {
					a = c.id
				}
				args = append(args, a)
			}
			rr := *r
			rr.t = t
			var serr string
			var code int
			if tc.name == "leaked fd as cwd" {
				var goErr string
				var goCode int
				_, serr, code, _, goErr, goCode = rr.bothPathsOut(tc.extra, args...)
				if goCode != 1 || !strings.HasPrefix(goErr, `gantry-oci: process.cwd "/proc/self/fd/8": `) {
					t.Errorf("Go init: exit %d, stderr %q; want a refused process.cwd", goCode, goErr)
				}
			} else {
				_, serr, code = rr.bothPaths(tc.extra, args...)
			}
			if code != tc.code || serr != tc.want {
				t.Errorf("exit %d, stderr %q; want %d, %q", code, serr, tc.code, tc.want)
			}
		})
	}
	// Nothing is left behind: only the container's init runs.
	var pids []int
	if err := json.Unmarshal([]byte(r.ok("ps", "--format", "json", c.id)), &pids); err != nil || len(pids) != 1 || pids[0] != c.pid {
		t.Errorf("processes in the container after the failed execs: %v (%v), want only the init %d", pids, err, c.pid)
	}
}

func TestRootExecGoPathForUncommon(t *testing.T) {
	r := newRT(t)
	c := r.newContainer(true, nil, "/bin/sleep", "600")

	// A terminal: the Go init sets up the pty.
	out, serr, path, code := r.execOut(nil, nil, "exec", "-t", c.id, "/bin/sh", "-c", "tty >/dev/null && echo on a tty")
	if path != "go" || code != 0 || !strings.Contains(out, "on a tty") {
		t.Errorf("exec -t: path %q, exit %d, stdout %q, stderr %q; want the Go path, 0, on a tty", path, code, out, serr)
	}

	// An I/O priority: only the Go init sets it.
	p := specs.Process{
		Args:       []string{"/bin/sh", "-c", "echo ran"},
		Env:        []string{"PATH=/bin"},
		Cwd:        "/",
		IOPriority: &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 4},
	}
	data, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "process.json")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, serr, path, code = r.execOut(nil, nil, "exec", "--process", file, c.id)
	if path != "go" || code != 0 || out != "ran\n" {
		t.Errorf("exec --process with ioPriority: path %q, exit %d, stdout %q, stderr %q; want the Go path, 0, ran", path, code, out, serr)
	}
	// The same process without it runs on the fast path.
	p.IOPriority = nil
	data, _ = json.Marshal(p)
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, serr, path, code = r.execOut(nil, nil, "exec", "--process", file, c.id)
	if path != "fast" || code != 0 || out != "ran\n" {
		t.Errorf("exec --process: path %q, exit %d, stdout %q, stderr %q; want the fast path, 0, ran", path, code, out, serr)
	}
}

// TestRootExecPasswdFIFO: a container whose /etc/passwd is a FIFO cannot
// make exec hang while it looks for HOME.
func TestRootExecPasswdFIFO(t *testing.T) {
	r := newRT(t)
	c := r.newContainerFiles(true, nil, map[string]string{"etc/passwd|": ""}, "/bin/sleep", "600")
	out, serr, code := r.bothPaths(nil, "exec", c.id, "/bin/sh", "-c", "echo $HOME")
	if code != 0 || out != "/\n" {
		t.Errorf("exec: exit %d, stdout %q, stderr %q; want 0 and HOME=/", code, out, serr)
	}
}

// TestRootExecCwdTooLongToTell: a cwd whose real path is longer than
// getcwd(2) can report (a page) might lie outside the container; both
// paths refuse it rather than let the process run there unchecked.
func TestRootExecCwdTooLongToTell(t *testing.T) {
	r := newRT(t)
	c := r.newContainer(true, func(s *specs.Spec) { s.Root.Readonly = false }, "/bin/sleep", "600")
	root, err := os.Open(fmt.Sprintf("/proc/%d/root", c.pid))
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	// /d0/d1/.../d16, 17 components of 250 bytes: 4267 bytes in all.
	fd := int(root.Fd())
	var names []string
	for i := 0; i < 17; i++ {
		name := fmt.Sprintf("%02d", i) + strings.Repeat("x", 248)
		names = append(names, name)
		if err := unix.Mkdirat(fd, name, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if fd != int(root.Fd()) {
			unix.Close(fd)
		}
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	unix.Close(fd)
	// /s1 -> d0/.../d7, and d7/s2 -> d8/.../d16: the cwd "/s1/s2" fits
	// in a path, its real path does not.
	if err := unix.Symlinkat(strings.Join(names[:8], "/"), int(root.Fd()), "s1"); err != nil {
		t.Fatal(err)
	}
	if err := unix.Symlinkat(strings.Join(names[8:], "/"), int(root.Fd()), strings.Join(names[:8], "/")+"/s2"); err != nil {
		t.Fatal(err)
	}
	_, serr, code := r.bothPaths(nil, "exec", "--cwd", "/s1/s2", c.id, "/bin/true")
	want := `gantry-oci: process.cwd "/s1/s2": cannot tell whether it lies inside the container: getcwd: file name too long`
	if code != 1 || serr != want {
		t.Errorf("exit %d, stderr %q; want 1, %q", code, serr, want)
	}
}

// TestRootExecStateView: create writes the flat exec view beside
// state.json, and exec behaves the same with it, without it (a container
// created by an older build) and with one it cannot read, on both paths.
func TestRootExecStateView(t *testing.T) {
	r := newRT(t)
	c := r.newContainerFiles(true, func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "FROM_SPEC=1")
		s.Process.Cwd = "/bin"
	}, map[string]string{"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"}, "/bin/sleep", "600")
	view := filepath.Join(r.root, c.id, "exec.view")
	if _, err := os.Stat(view); err != nil {
		t.Fatalf("create wrote no exec view: %v", err)
	}
	args := []string{"exec", "-e", "FROM_FLAG=2", c.id, "/bin/sh", "-c", reportScript}
	want, serr, code := r.bothPaths(nil, args...)
	if code != 0 {
		t.Fatalf("exec: exit %d: %s", code, serr)
	}
	for _, s := range []string{"env FROM_SPEC=1", "env FROM_FLAG=2", "cwd=/bin"} {
		if !strings.Contains(want, s) {
			t.Errorf("output lacks %q:\n%s", s, want)
		}
	}
	for _, tc := range []struct {
		name    string
		content []byte // nil: no view
	}{
		{"no view", nil},
		{"unreadable view", []byte("not a view")},
	} {
		os.Remove(view)
		if tc.content != nil {
			if err := os.WriteFile(view, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		out, serr, code := r.bothPaths(nil, args...)
		if code != 0 || out != want {
			t.Errorf("%s: exit %d, stderr %q, output:\n%s\nwant (with the view):\n%s", tc.name, code, serr, out, want)
		}
	}
	// A missing container is reported as before.
	if _, serr, _, code := r.execOut(nil, nil, "exec", "nosuch", "/bin/true"); code == 0 || !strings.Contains(serr, `container "nosuch" does not exist`) {
		t.Errorf("exec in a missing container: exit %d, stderr %q", code, serr)
	}
}

// forwardScript traps a signal that would end gantry-oci (TERM, then
// exits 7), one a Go program ignores (USR1) and a real-time one (37).
const forwardScript = `trap 'echo usr1' USR1; trap 'echo rt37' 37; trap 'echo term; exit 7' TERM; echo ready; while :; do sleep 0.05; done`

// TestRootExecForwardsSignals: a foreground exec forwards the signals it
// gets to the process (one that would end gantry-oci, one a Go program
// ignores, a real-time one) and exits with the process's status.
func TestRootExecForwardsSignals(t *testing.T) {
	r := newRT(t)
	c := r.newContainerFiles(true, nil, map[string]string{"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n"}, "/bin/sleep", "600")
	checkForwards(t, exec.Command(r.bin, "--root", r.root, "exec", c.id, "/bin/sh", "-c", forwardScript))
}

// TestRootRunForwardsSignals: a foreground run forwards the signals it gets
// to the container's init once it started (run enables the ones a Go
// program ignores after those that would end it), exits with the init's
// status and deletes the container.
func TestRootRunForwardsSignals(t *testing.T) {
	r := newRT(t)
	c, bundle := r.newBundle(nil, nil, "/bin/sh", "-c", forwardScript)
	t.Cleanup(func() {
		if _, _, code := r.run("state", c.id); code == 0 {
			t.Errorf("container %s is left after run", c.id)
			r.remove(c)
		}
	})
	checkForwards(t, exec.Command(r.bin, "--root", r.root, "run", "--bundle", bundle, c.id))
}

// checkForwards starts cmd (a foreground exec or run of forwardScript),
// sends it each signal until the process says it got it, and checks that
// cmd exits with the process's 7.
func checkForwards(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serr strings.Builder
	cmd.Stderr = &serr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := false
	t.Cleanup(func() {
		if !done {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		buf := make([]byte, 0, 256)
		one := make([]byte, 1)
		for {
			if _, err := stdout.Read(one); err != nil {
				return
			}
			if one[0] == '\n' {
				lines <- string(buf)
				buf = buf[:0]
				continue
			}
			buf = append(buf, one[0])
		}
	}()
	// await sends sig (if any) until the process prints want; a signal
	// that comes before the process's trap is in place is sent again.
	await := func(sig syscall.Signal, want string) {
		t.Helper()
		deadline := time.After(30 * time.Second)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if sig != 0 {
				cmd.Process.Signal(sig)
			}
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("%s ended before printing %q (stderr %q)", cmd.Args[3], want, serr.String())
				}
				if l == want {
					return
				}
			case <-tick.C:
			case <-deadline:
				t.Fatalf("no %q from the process after 30 s (stderr %q)", want, serr.String())
			}
		}
	}
	await(0, "ready")
	await(syscall.SIGUSR1, "usr1")
	await(syscall.Signal(37), "rt37")
	await(syscall.SIGTERM, "term")
	for range lines {
	}
	err = cmd.Wait()
	done = true
	if code := cmd.ProcessState.ExitCode(); code != 7 {
		t.Errorf("%s exited with %d (%v, stderr %q), want the process's 7", cmd.Args[3], code, err, serr.String())
	}
}
