package containers

import (
	"strings"
	"testing"
)

// oneLine reports whether stderr is a single line: what a failing command
// prints.
func oneLine(stderr string) bool {
	s := strings.TrimSpace(stderr)
	return s != "" && !strings.Contains(s, "\n")
}

// kindWords are the error kinds' words that a message must not end with:
// the exit code carries the kind.
var kindWords = []string{": not found", ": failed precondition", ": invalid argument", ": already exists"}

func endsWithKind(stderr string) bool {
	s := strings.TrimSpace(stderr)
	for _, w := range kindWords {
		if strings.HasSuffix(s, w) {
			return true
		}
	}
	return false
}

// TestRunFlagsAsDocker: --memory below docker's minimum is refused before
// anything is created, --pids-limit -1 and 0 mean no limit, a --tmpfs is
// noexec unless its options say exec, and logs --tail -1 is every line.
func TestRunFlagsAsDocker(t *testing.T) {
	e := newEnv(t)

	// --memory 1k: exit 125, one line naming the minimum, nothing left.
	out, errOut, code := e.gantry("run", "--rm", "--memory", "1k", "busybox", "true")
	if code != 125 || !oneLine(errOut) || !strings.Contains(errOut, "6MB") || endsWithKind(errOut) {
		t.Errorf("run --memory 1k: exit %d, stdout %q, stderr %q; want 125 and one line naming 6MB", code, out, errOut)
	}
	e.assertClean()

	// --pids-limit -1 and 0: no limit, as docker; the container's own
	// pids.max (v1 under pids/, v2 at the top) says max.
	for _, v := range []string{"-1", "0"} {
		out, errOut, code := e.gantry("run", "--rm", "--pids-limit", v, "busybox", "sh", "-c",
			"cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
		if code != 0 || strings.TrimSpace(out) != "max" {
			t.Errorf("run --pids-limit %s: exit %d, stdout %q, stderr %q; want pids.max max", v, code, out, errOut)
		}
	}
	out, errOut, code = e.gantry("run", "--rm", "--pids-limit", "5", "busybox", "sh", "-c",
		"cat /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids.max")
	if code != 0 || strings.TrimSpace(out) != "5" {
		t.Errorf("run --pids-limit 5: exit %d, stdout %q, stderr %q; want pids.max 5", code, out, errOut)
	}

	// --tmpfs /x: rw,noexec,nosuid,nodev and no size; a binary copied there
	// does not run.
	const showTmpfs = `grep " /x " /proc/mounts; cp /bin/busybox /x/true && /x/true && echo ran; exit 0`
	out, errOut, code = e.gantry("run", "--rm", "--tmpfs", "/x", "busybox", "sh", "-c", showTmpfs)
	opts := tmpfsOptions(out)
	if code != 0 || !hasAll(opts, "rw", "noexec", "nosuid", "nodev") || hasPrefix(opts, "size=") || strings.Contains(out, "ran") {
		t.Errorf("run --tmpfs /x: exit %d, stdout %q, stderr %q; want rw,noexec,nosuid,nodev without size, and no exec", code, out, errOut)
	}
	// --tmpfs /x:exec,size=8m: its options win over the defaults.
	out, errOut, code = e.gantry("run", "--rm", "--tmpfs", "/x:exec,size=8m", "busybox", "sh", "-c", showTmpfs)
	opts = tmpfsOptions(out)
	if code != 0 || hasAll(opts, "noexec") || !hasAll(opts, "nosuid", "nodev", "size=8192k") || !strings.Contains(out, "ran") {
		t.Errorf("run --tmpfs /x:exec,size=8m: exit %d, stdout %q, stderr %q; want exec, nosuid, nodev, size=8192k", code, out, errOut)
	}

	// logs --tail -1: every line, as docker.
	e.mustGantry("run", "--name", "lines", "busybox", "sh", "-c", "echo one; echo two; echo three")
	for _, tail := range []string{"-1", "all"} {
		if out := e.mustGantry("logs", "--tail", tail, "lines"); out != "one\ntwo\nthree\n" {
			t.Errorf("logs --tail %s: %q, want the three lines", tail, out)
		}
	}
	e.mustGantry("rm", "lines")
	e.assertClean()
}

// tmpfsOptions returns the options of the /proc/mounts line of /x in out.
func tmpfsOptions(out string) []string {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) >= 4 && f[1] == "/x" {
			return strings.Split(f[3], ",")
		}
	}
	return nil
}

func hasAll(opts []string, want ...string) bool {
	for _, w := range want {
		found := false
		for _, o := range opts {
			found = found || o == w
		}
		if !found {
			return false
		}
	}
	return true
}

func hasPrefix(opts []string, prefix string) bool {
	for _, o := range opts {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}

// TestNotRunningAsDocker: start of a running container does nothing and
// succeeds; kill, top and stats of a stopped one say it is not running in
// one line, exit 1; stop of a stopped one succeeds; no message ends with an
// error kind's words.
func TestNotRunningAsDocker(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "up", "busybox", "sleep", "1000")
	before := e.ps()["up"]
	out, errOut, code := e.gantry("start", "up")
	if code != 0 || out != "up\n" || errOut != "" {
		t.Errorf("start of a running container: exit %d, stdout %q, stderr %q; want 0 and its name", code, out, errOut)
	}
	if p := e.ps()["up"]; p.State != "running" || p.ID != before.ID {
		t.Errorf("after start of a running container: %+v", p)
	}
	// stats reads the runtime's numbers (cgroup v1 or v2): one process,
	// some memory.
	if out := e.mustGantry("stats", "up"); !statsRowOf(out, "up", func(f []string) bool {
		return f[len(f)-1] == "1" && !strings.HasPrefix(f[2], "0B")
	}) {
		t.Errorf("stats of a running container:\n%s", out)
	}

	e.mustGantry("run", "-d", "--name", "k4", "busybox", "true")
	e.mustGantry("wait", "k4")
	for _, args := range [][]string{{"kill", "k4"}, {"top", "k4"}, {"stats", "k4"}} {
		out, errOut, code := e.gantry(args...)
		if code != 1 || strings.TrimSpace(errOut) != "gantry: container k4 is not running" {
			t.Errorf("%s of a stopped container: exit %d, stdout %q, stderr %q; want 1 and %q",
				args[0], code, out, errOut, "gantry: container k4 is not running")
		}
	}
	if out, errOut, code := e.gantry("stop", "k4"); code != 0 || out != "k4\n" {
		t.Errorf("stop of a stopped container: exit %d, stdout %q, stderr %q; want 0", code, out, errOut)
	}

	// Errors through the API: one line, no kind words at the end.
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"exec", "k4", "true"}, 125, "not running"},
		{[]string{"rm", "nosuch"}, 1, "no such container: nosuch"},
		{[]string{"kill", "nosuch"}, 1, "no such container: nosuch"},
		{[]string{"inspect", "nosuch"}, 1, "no such container or image: nosuch"},
		{[]string{"run", "--name", "up", "busybox", "true"}, 125, `"up": already in use`},
		{[]string{"run", "--rm", "--pids-limit", "1", "--cpus", "0.001", "busybox", "true"}, 125, "cpus"},
	} {
		_, errOut, code := e.gantry(tc.args...)
		if code != tc.code || !oneLine(errOut) || !strings.Contains(errOut, tc.msg) || endsWithKind(errOut) {
			t.Errorf("%s: exit %d, stderr %q; want %d and one line with %q, without a kind's words at the end",
				strings.Join(tc.args, " "), code, errOut, tc.code, tc.msg)
		}
	}
	e.mustGantry("rm", "-f", "up", "k4")
	e.assertClean()
}

// statsRowOf reports whether the stats table out has a row for name whose
// fields (CONTAINER, CPU TIME, MEM USAGE, /, LIMIT, PIDS) satisfy ok.
func statsRowOf(out, name string, ok func([]string) bool) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 6 && f[0] == name {
			return ok(f)
		}
	}
	return false
}

// TestRmForceMissing: `rm -f` of a container that does not exist says so
// on stderr but succeeds (the container is gone either way), as docker's;
// `rm` without -f fails.
func TestRmForceMissing(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "here", "busybox", "sleep", "100")
	out, errOut, code := e.gantry("rm", "-f", "nosuch", "here")
	if code != 0 || out != "here\n" || !strings.Contains(errOut, "nosuch") {
		t.Errorf("rm -f nosuch here: exit %d, stdout %q, stderr %q; want 0, here, a line about nosuch", code, out, errOut)
	}
	if _, errOut, code := e.gantry("rm", "nosuch"); code != 1 || !strings.Contains(errOut, "nosuch") {
		t.Errorf("rm nosuch: exit %d, stderr %q; want 1 and a line about nosuch", code, errOut)
	}
	e.assertClean()
}
