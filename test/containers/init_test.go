package containers

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestRunInit checks `gantry run --init`: gantry-init is PID 1 with the
// command as its child, reaps orphans, forwards gantry stop's SIGTERM,
// passes the command's exit status through and is mounted read-only.
func TestRunInit(t *testing.T) {
	e := newEnv(t)
	run := func(args ...string) (string, string, int) {
		t.Helper()
		return e.gantry(append([]string{"run", "--rm", "--init"}, args...)...)
	}

	t.Run("pid1", func(t *testing.T) {
		out, errOut, code := run("busybox", "sh", "-c", `tr '\0' ' ' </proc/1/cmdline; echo; echo "$$ $PPID"`)
		lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
		if code != 0 || len(lines) != 2 {
			t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if !strings.HasPrefix(lines[0], "/sbin/gantry-init -- sh -c ") {
			t.Errorf("/proc/1/cmdline = %q, want /sbin/gantry-init -- sh -c ...", lines[0])
		}
		if f := strings.Fields(lines[1]); len(f) != 2 || f[0] == "1" || f[1] != "1" {
			t.Errorf("pid and parent pid of the command = %q, want a pid other than 1 whose parent is 1", lines[1])
		}
		// The init runs as the container's user, too.
		if out, errOut, code := run("--user", "1000:1000", "busybox", "id", "-u"); code != 0 || out != "1000\n" {
			t.Errorf("--user 1000 --init id -u: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("reaps orphans", func(t *testing.T) {
		// The subshell exits at once, so sleep is re-parented to PID 1;
		// the loop waits (at most 30 s: a hang guard) for it to be reaped.
		script := `(sleep 0.1 & echo $! >/tmp/orphan); p=$(cat /tmp/orphan); i=0
while [ -e /proc/$p ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
if [ -e /proc/$p ]; then echo "not reaped: $(cat /proc/$p/stat)"; else echo reaped; fi`
		out, errOut, code := run("busybox", "sh", "-c", script)
		if code != 0 || out != "reaped\n" {
			t.Errorf("exit %d, stdout %q, stderr %q, want reaped", code, out, errOut)
		}
	})

	t.Run("exit status", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			code int
			msg  string
		}{
			{[]string{"sh", "-c", "exit 7"}, 7, ""},
			{[]string{"true"}, 0, ""},
			{[]string{"sh", "-c", "kill -USR1 $$"}, 128 + 10, ""},
			{[]string{"nonexistent-command", "arg"}, 127, `"nonexistent-command": executable file not found`},
			{[]string{"/no/such/file"}, 127, `"/no/such/file": no such file or directory`},
			{[]string{"/etc/passwd"}, 126, `"/etc/passwd": permission denied`},
		} {
			_, errOut, code := run(append([]string{"busybox"}, tc.args...)...)
			if code != tc.code {
				t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errOut)
			}
			if tc.msg != "" && (!strings.Contains(errOut, tc.msg) || strings.Count(strings.TrimSpace(errOut), "\n") != 0) {
				t.Errorf("%v: stderr %q, want one line containing %q", tc.args, errOut, tc.msg)
			}
		}
	})

	t.Run("read-only", func(t *testing.T) {
		// The running init alone would refuse the write (ETXTBSY): the
		// error must be the read-only mount's, and mountinfo must say ro.
		out, errOut, code := run("busybox", "sh", "-c", `echo x >/sbin/gantry-init && echo wrote; grep ' /sbin/gantry-init ' /proc/self/mountinfo`)
		if code != 0 || strings.Contains(out, "wrote") || !strings.Contains(errOut, "Read-only file system") {
			t.Errorf("writing /sbin/gantry-init: exit %d, stdout %q, stderr %q, want the write refused by a read-only file system", code, out, errOut)
		}
		if f := strings.Fields(out); len(f) < 6 || !strings.Contains(","+f[5]+",", ",ro,") {
			t.Errorf("mountinfo of /sbin/gantry-init: %q, want a read-only mount", out)
		}
		// With a read-only root filesystem too (the mount point is made first).
		if out, errOut, code := run("--read-only", "busybox", "echo", "ok"); code != 0 || out != "ok\n" {
			t.Errorf("--read-only --init: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
	})

	t.Run("stop forwards SIGTERM", func(t *testing.T) {
		// Without --init, sh as PID 1 ignores SIGTERM and stop kills it
		// (137, TestDetachedLifecycle); with it, both commands die of the
		// forwarded SIGTERM: 143. The 60 s timeout only separates the two.
		for name, args := range map[string][]string{
			"sleeper": {"sleep", "1000"},
			"looper":  {"sh", "-c", "while true; do sleep 0.2; done"},
		} {
			e.mustGantry(append([]string{"run", "-d", "--init", "--name", name, "busybox"}, args...)...)
			e.mustGantry("stop", "-t", "60", name)
			if p := e.ps()[name]; p.State == "running" || p.ExitCode == nil || *p.ExitCode != 143 {
				code := "none"
				if p.ExitCode != nil {
					code = fmt.Sprint(*p.ExitCode)
				}
				t.Errorf("%s after stop: state %q, exit code %s, want exited 143 (SIGTERM reached the command)", name, p.State, code)
			}
			e.mustGantry("rm", name)
		}
	})

	t.Run("create", func(t *testing.T) {
		e.mustGantry("create", "--init", "--name", "created", "busybox", "sh", "-c", "exit 9")
		e.mustGantry("start", "created")
		if out := e.mustGantry("wait", "created"); out != "9\n" {
			t.Errorf("create --init, start, wait: %q, want 9", out)
		}
		e.mustGantry("rm", "created")
	})
	e.assertClean()

	t.Run("missing init", func(t *testing.T) {
		e.stop()
		missing := filepath.Join(e.dir, "no-such-gantry-init")
		// A top-level key goes before the config's [registry] table.
		body, err := os.ReadFile(e.config)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(e.config, append([]byte(fmt.Sprintf("init = %q\n", missing)), body...), 0o600); err != nil {
			t.Fatal(err)
		}
		e.start()
		out, errOut, code := run("busybox", "true")
		if code != 125 || !strings.Contains(errOut, "--init") || !strings.Contains(errOut, missing) || strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
			t.Errorf("run --init with a missing init: exit %d, stdout %q, stderr %q, want 125 and one line naming %s", code, out, errOut, missing)
		}
		if out := e.mustGantry("run", "--rm", "busybox", "echo", "ok"); out != "ok\n" {
			t.Errorf("run without --init: %q", out)
		}
	})
	e.assertClean()
}

// TestRunInitTty: under -t the command is the terminal's foreground process
// group (an interactive shell with job control would otherwise stop
// itself), so a Ctrl-C reaches the command in the foreground.
func TestRunInitTty(t *testing.T) {
	e := newEnv(t)
	c := startPty(t, e, nil, "run", "-it", "--rm", "--init", "--name", "itty", "busybox", "sh")
	c.expect(`# `)
	c.typeLine(`echo "pgrp=$(cut -d' ' -f5 /proc/$$/stat) fg=$(cut -d' ' -f8 /proc/$$/stat) pid=$$"`)
	m := regexp.MustCompile(`pgrp=(\d+) fg=(\d+) pid=(\d+)`).FindStringSubmatch(c.expect(`pgrp=\d+ fg=\d+ pid=\d+`))
	if m[1] != m[2] || m[3] == "1" {
		t.Errorf("the shell (pid %s) is in process group %s, the terminal's foreground group is %s: want a child of the init in the foreground", m[3], m[1], m[2])
	}
	c.expect(`# `)
	c.typeLine("sleep 1000")
	e.waitFor("sleep in the container", func() bool { return hasProcess(e.mustGantry("top", "itty"), "sleep 1000") })
	if _, err := io.WriteString(c.master, "\x03"); err != nil {
		t.Fatal(err)
	}
	e.waitFor("Ctrl-C to end sleep", func() bool { return !hasProcess(e.mustGantry("top", "itty"), "sleep 1000") })
	c.expect(`# `)
	c.typeLine("exit 3")
	if code := c.wait(); code != 3 {
		t.Errorf("gantry run -it --init exited %d, want the shell's 3", code)
	}
	e.assertClean()
}
