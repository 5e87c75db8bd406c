package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/bundle"
	"github.com/gantry-project/gantry/test/probe/report"
)

// withCwd returns an option that sets process.cwd.
func withCwd(cwd string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Cwd = cwd }
}

// checkDir fails t unless path is a directory with mode perm owned by
// uid:gid.
func checkDir(t *testing.T, path string, perm uint32, uid, gid int) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != perm || int(st.Uid) != uid || int(st.Gid) != gid {
		t.Errorf("%s: mode %#o owner %d:%d, want a directory %#o owned by %d:%d", path, st.Mode, st.Uid, st.Gid, perm, uid, gid)
	}
}

// checkEmpty fails t unless the host directory dir is empty.
func checkEmpty(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("host directory %s: the container created %q in it", dir, names)
	}
}

// mkdirOwned makes dir with mode perm owned by uid:gid.
func mkdirOwned(t *testing.T, dir string, perm uint32, uid, gid int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(dir, perm); err != nil {
		t.Fatal(err)
	}
}

// TestRootCwdCreated: create makes a missing process.cwd inside the
// container (0755, root's, before the root is made read-only: the base
// spec's root is read-only) and the process starts in it, as runc does; a
// cwd reached through a symlink that names a host path creates nothing on
// the host.
func TestRootCwdCreated(t *testing.T) {
	t.Run("missing", func(t *testing.T) {
		b := bundle.New(t, withCwd("/newdir/sub"))
		if r := RunBundle(t, b); r.Cwd != "/newdir/sub" {
			t.Errorf("cwd = %q, want /newdir/sub", r.Cwd)
		}
		checkDir(t, filepath.Join(b.Rootfs(), "newdir"), 0o755, 0, 0)
		checkDir(t, filepath.Join(b.Rootfs(), "newdir/sub"), 0o755, 0, 0)
	})
	t.Run("umask 077", func(t *testing.T) {
		// runc creates it with the umask of its caller.
		skipIfRunc(t, "the cwd is created with the caller's umask")
		b := bundle.New(t, withCwd("/newdir"))
		stdout, stderr, code := runCmd(t, viaShell("umask 077"), "run", "--bundle", b.Dir, b.ID)
		if code != 0 {
			t.Fatalf("run: exit %d, stderr %q", code, stderr)
		}
		if r, err := report.Parse([]byte(stdout)); err != nil || r.Cwd != "/newdir" {
			t.Errorf("run: report %+v (%v), want cwd /newdir", r, err)
		}
		checkDir(t, filepath.Join(b.Rootfs(), "newdir"), 0o755, 0, 0)
	})
	t.Run("symlink to a host path", func(t *testing.T) {
		host := t.TempDir()
		// The link is dangling in the container: create fails (runc:
		// "mkdir /escape: file exists") and makes nothing on the host.
		b := bundle.New(t, withCwd("/escape/x"))
		if err := os.Symlink(host, filepath.Join(b.Rootfs(), "escape")); err != nil {
			t.Fatal(err)
		}
		if _, stderr, code := Run(t, "run", "--bundle", b.Dir, b.ID); code == 0 || !strings.Contains(stderr, "/escape") {
			t.Errorf("run with cwd /escape/x, /escape -> %s missing in the rootfs: exit %d, stderr %q; want an error naming /escape", host, code, stderr)
		}
		checkEmpty(t, host)
		// The same path in the rootfs: the cwd is made there.
		b = bundle.New(t, withCwd("/escape/x"))
		if err := os.Symlink(host, filepath.Join(b.Rootfs(), "escape")); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(b.Rootfs(), host), 0o755); err != nil {
			t.Fatal(err)
		}
		if r := RunBundle(t, b); r.Cwd != host+"/x" {
			t.Errorf("cwd = %q, want %s/x (in the container)", r.Cwd, host)
		}
		checkDir(t, filepath.Join(b.Rootfs(), host, "x"), 0o755, 0, 0)
		checkEmpty(t, host)
	})
	t.Run("magic link to the host", func(t *testing.T) {
		// Without a PID namespace the container's /proc/1/root is the
		// host's root.
		host := t.TempDir()
		b := bundle.New(t, withCwd("/magic/x"), func(s *specs.Spec) {
			var ns []specs.LinuxNamespace
			for _, n := range s.Linux.Namespaces {
				if n.Type != specs.PIDNamespace {
					ns = append(ns, n)
				}
			}
			s.Linux.Namespaces = ns
		})
		if err := os.Symlink("/proc/1/root"+host, filepath.Join(b.Rootfs(), "magic")); err != nil {
			t.Fatal(err)
		}
		if stdout, stderr, code := Run(t, "run", "--bundle", b.Dir, b.ID); code == 0 {
			t.Errorf("run with cwd /magic/x, /magic -> /proc/1/root%s: exit 0 (stdout %q, stderr %q), want an error", host, stdout, stderr)
		}
		checkEmpty(t, host)
	})
	t.Run("not for exec", func(t *testing.T) {
		b, _ := startSleeper(t, func(s *specs.Spec) { s.Root.Readonly = false })
		for _, env := range []string{"", "GANTRY_OCI_EXEC=go"} {
			_, stderr, code := runCmd(t, withEnv(env), "exec", "--cwd", "/missing", b.ID, "/bin/true")
			if code == 0 || !strings.Contains(stderr, "/missing") || !strings.Contains(stderr, "no such file or directory") {
				t.Errorf("exec --cwd /missing (%s): exit %d, stderr %q; want no such file or directory", env, code, stderr)
			}
			if _, err := os.Lstat(filepath.Join(b.Rootfs(), "missing")); err == nil {
				t.Errorf("exec --cwd /missing (%s) created it", env)
			}
		}
	})
}

// withoutDAC returns a runCmd setup that runs the runtime through
// setpriv(1) without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in its
// bounding set (root may then enter only what its mode bits allow), with
// env added to its environment.
func withoutDAC(setpriv string, env ...string) func(*exec.Cmd) func() {
	return func(cmd *exec.Cmd) func() {
		withEnv(env...)(cmd)
		cmd.Args = append([]string{"setpriv", "--bounding-set", "-dac_override,-dac_read_search", "--"}, cmd.Args...)
		cmd.Path = setpriv
		return nil
	}
}

// TestRootCwdBeforeUser: the process's cwd is entered before the user
// switch (as root), and again after it only if root was refused, as runc
// does, on create and on both exec paths:
//   - uid 1000 with cwd /root (0700, root's): root enters it;
//   - uid 1000 with a directory that only it may enter: root is refused
//     (in a user namespace, root has no CAP_DAC_OVERRIDE over an unmapped
//     owner; for exec, the runtime runs without CAP_DAC_OVERRIDE and
//     CAP_DAC_READ_SEARCH), the user enters it;
//   - a directory neither may enter fails with permission denied.
func TestRootCwdBeforeUser(t *testing.T) {
	user := func(s *specs.Spec) { s.Process.User = specs.User{UID: 1000, GID: 1000} }
	t.Run("create: root may enter", func(t *testing.T) {
		r := RunBundle(t, bundle.New(t, user, withCwd("/root")))
		if r.Cwd != "/root" || r.UID != 1000 || r.EUID != 1000 {
			t.Errorf("cwd %q, uid %d, euid %d; want /root and 1000", r.Cwd, r.UID, r.EUID)
		}
	})
	userNS := func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
	}
	// Owned by the host's root (not mapped), group 1000 or 2000 of the
	// container, 0770: only the group may enter.
	t.Run("create: only the user may enter", func(t *testing.T) {
		b := bundle.New(t, user, userNS, withCwd("/home/tester/grp"))
		openPath(t, b.Rootfs())
		mkdirOwned(t, filepath.Join(b.Rootfs(), "home/tester/grp"), 0o770, 0, 101000)
		r := RunBundle(t, b)
		if r.Cwd != "/home/tester/grp" || r.UID != 1000 {
			t.Errorf("cwd %q, uid %d; want /home/tester/grp and 1000", r.Cwd, r.UID)
		}
	})
	t.Run("create: nobody may enter", func(t *testing.T) {
		b := bundle.New(t, user, userNS, withCwd("/home/tester/other"))
		openPath(t, b.Rootfs())
		mkdirOwned(t, filepath.Join(b.Rootfs(), "home/tester/other"), 0o770, 0, 102000)
		_, stderr, code := Run(t, "run", "--bundle", b.Dir, b.ID)
		if code == 0 || !strings.Contains(stderr, "/home/tester/other") || !strings.Contains(stderr, "permission denied") {
			t.Errorf("run: exit %d, stderr %q; want the cwd refused with permission denied", code, stderr)
		}
	})
	t.Run("exec", func(t *testing.T) {
		b := bundle.New(t, bundle.Args("/bin/sleep", "600"))
		mkdirOwned(t, filepath.Join(b.Rootfs(), "home/tester/private"), 0o700, 1000, 1000)
		mkdirOwned(t, filepath.Join(b.Rootfs(), "home/tester/other"), 0o700, 2000, 2000)
		mustRun(t, "run", "--detach", "--bundle", b.Dir, b.ID)
		setpriv, err := exec.LookPath("setpriv")
		for _, env := range []string{"", "GANTRY_OCI_EXEC=go"} {
			stdout, stderr, code := runCmd(t, withEnv(env), "exec", "--user", "1000:1000", "--cwd", "/root", b.ID, "/bin/sh", "-c", "pwd; id -u")
			if code != 0 || stdout != "/root\n1000\n" {
				t.Errorf("exec --user 1000:1000 --cwd /root (%s): exit %d, stdout %q, stderr %q; want /root and 1000", env, code, stdout, stderr)
			}
			if err != nil {
				t.Logf("no setpriv (%v): the retry as the user is not checked for exec", err)
				continue
			}
			stdout, stderr, code = runCmd(t, withoutDAC(setpriv, env), "exec", "--user", "1000:1000", "--cwd", "/home/tester/private", b.ID, "/bin/sh", "-c", "pwd; id -u")
			if code != 0 || stdout != "/home/tester/private\n1000\n" {
				t.Errorf("exec --cwd /home/tester/private by a runtime without CAP_DAC_* (%s): exit %d, stdout %q, stderr %q; want it entered as 1000", env, code, stdout, stderr)
			}
			_, stderr, code = runCmd(t, withoutDAC(setpriv, env), "exec", "--user", "1000:1000", "--cwd", "/home/tester/other", b.ID, "/bin/true")
			if code == 0 || !strings.Contains(stderr, "/home/tester/other") || !strings.Contains(stderr, "permission denied") {
				t.Errorf("exec --cwd /home/tester/other by a runtime without CAP_DAC_* (%s): exit %d, stderr %q; want permission denied", env, code, stderr)
			}
		}
	})
}
