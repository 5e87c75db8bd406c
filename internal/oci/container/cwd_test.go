package container

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// withoutDAC returns a copy of r whose gantry-oci runs through setpriv(1)
// without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH in its bounding set, so
// that root in the container may enter only what the mode bits let it.
func (r *rt) withoutDAC() *rt {
	r.t.Helper()
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		r.t.Skipf("needs setpriv (util-linux): %v", err)
	}
	script := filepath.Join(r.t.TempDir(), "gantry-oci-nodac")
	body := "#!/bin/sh\nexec " + setpriv + " --bounding-set -dac_override,-dac_read_search -- " + r.bin + " \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		r.t.Fatal(err)
	}
	rr := *r
	rr.bin = script
	return &rr
}

// chownMode sets the owner and mode of path.
func chownMode(t *testing.T, path string, uid, gid int, mode uint32) {
	t.Helper()
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// TestRootExecFastPathCwdBeforeUser: both exec paths enter the cwd before
// the user switch, as root, and again as the user only when root was
// refused (EACCES, EPERM), as runc does; other errors fail at once; the
// CVE-2024-21626 check follows the last chdir. Outputs and messages are
// the same on both paths.
func TestRootExecFastPathCwdBeforeUser(t *testing.T) {
	r := newRT(t)
	c, bundle := r.newBundle(nil, map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\nu:x:1000:1000:u:/home/u:/bin/sh\n",
		"root/":      "",
		"home/u/":    "",
		"home/o/":    "",
	}, "/bin/sleep", "600")
	rootfs := filepath.Join(bundle, "rootfs")
	chownMode(t, filepath.Join(rootfs, "root"), 0, 0, 0o700)
	chownMode(t, filepath.Join(rootfs, "home/u"), 1000, 1000, 0o700)
	chownMode(t, filepath.Join(rootfs, "home/o"), 2000, 2000, 0o700)
	t.Cleanup(func() { r.remove(c) })
	r.ok("create", "--bundle", bundle, c.id)
	r.ok("start", c.id)

	// Root may enter /root, uid 1000 may not: it is entered as root.
	out, serr, code := r.bothPaths(nil, "exec", "--user", "1000:1000", "--cwd", "/root", c.id, "/bin/sh", "-c", "pwd; id -u")
	if code != 0 || out != "/root\n1000\n" {
		t.Errorf("exec --user 1000:1000 --cwd /root: exit %d, stdout %q, stderr %q; want /root, 1000", code, out, serr)
	}
	// Not a directory: refused at once, not retried.
	_, serr, code = r.bothPaths(nil, "exec", "--user", "1000:1000", "--cwd", "/etc/passwd", c.id, "/bin/true")
	if want := `gantry-oci: process.cwd "/etc/passwd": not a directory`; code != 1 || serr != want {
		t.Errorf("exec --cwd /etc/passwd: exit %d, stderr %q; want 1, %q", code, serr, want)
	}

	// A runtime without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: root is
	// refused /home/u (0700, uid 1000's), uid 1000 enters it on the retry.
	nodac := r.withoutDAC()
	out, serr, code = nodac.bothPaths(nil, "exec", "--user", "1000:1000", "--cwd", "/home/u", c.id, "/bin/sh", "-c", "pwd; id -u")
	if code != 0 || out != "/home/u\n1000\n" {
		t.Errorf("exec --user 1000:1000 --cwd /home/u without CAP_DAC_*: exit %d, stdout %q, stderr %q; want /home/u, 1000", code, out, serr)
	}
	// Neither may enter /home/o: the retry's error.
	_, serr, code = nodac.bothPaths(nil, "exec", "--user", "1000:1000", "--cwd", "/home/o", c.id, "/bin/true")
	if want := `gantry-oci: process.cwd "/home/o": permission denied`; code != 1 || serr != want {
		t.Errorf("exec --cwd /home/o without CAP_DAC_*: exit %d, stderr %q; want 1, %q", code, serr, want)
	}
	// A preserved fd of a host directory that only uid 1000 may enter:
	// entered on the retry, then refused by the getcwd check.
	hostDir := t.TempDir()
	chownMode(t, hostDir, 1000, 1000, 0o700)
	dirF, err := os.Open(hostDir)
	if err != nil {
		t.Fatal(err)
	}
	defer dirF.Close()
	_, serr, code = nodac.bothPaths([]*os.File{dirF}, "exec", "--preserve-fds", "1", "--user", "1000:1000", "--cwd", "/proc/self/fd/3", c.id, "/bin/true")
	if want := `gantry-oci: process.cwd "/proc/self/fd/3": resolves outside the container ("(unreachable)` + hostDir + `"): invalid argument`; code != 1 || serr != want {
		t.Errorf("exec --cwd /proc/self/fd/3 (a host dir only uid 1000 may enter): exit %d, stderr %q; want 1, %q", code, serr, want)
	}
}

// TestCreateCwd runs createCwd on the host's root, below a temp dir: what
// it creates, with which mode whatever the umask, through which links, and
// what it refuses to go through.
func TestCreateCwd(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"real", "real/sub", "host"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"rel":      "real",                            // a relative link to a directory
		"deep":     "real/sub",                        // one a level down
		"dangling": filepath.Join(dir, "nowhere"),     // a link to nothing
		"magic":    "/proc/self/root" + dir + "/host", // a magic link
		"file":     "",                                // a regular file
	}
	for name, target := range links {
		var err error
		if target == "" {
			err = os.WriteFile(filepath.Join(dir, name), nil, 0o644)
		} else {
			err = os.Symlink(target, filepath.Join(dir, name))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	for _, tc := range []struct {
		cwd     string
		want    string // the directory that must exist afterwards ("" none)
		wantErr string // in the error ("" no error)
	}{
		{cwd: "/a/b", want: "/a/b"},
		{cwd: "/rel/c", want: "/real/c"},
		{cwd: "/nope/../d", want: "/d"},
		{cwd: "/deep/../g", want: "/real/g"}, // ".." after the link, not lexically
		{cwd: "/./e//f/", want: "/e/f"},
		{cwd: "/dangling/x", wantErr: "mkdir " + dir + "/dangling: file exists"},
		{cwd: "/magic/x"},
		{cwd: "/file/x"},
		{cwd: "/real"},
	} {
		err := createCwd(dir + tc.cwd)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("createCwd(%q): %v", tc.cwd, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("createCwd(%q) = %v, want an error with %q", tc.cwd, err, tc.wantErr)
		}
		if tc.want != "" {
			var st unix.Stat_t
			if err := unix.Lstat(dir+tc.want, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR || st.Mode&0o7777 != 0o755 {
				t.Errorf("createCwd(%q): %s: mode %#o (%v), want a 0755 directory", tc.cwd, tc.want, st.Mode, err)
			}
		}
	}
	// Not cleaned: "/nope/../d" made /nope on the way, "/deep/../g" put g
	// in real/.
	for _, p := range []string{"/nope", "/real/g"} {
		if st, err := os.Lstat(dir + p); err != nil || !st.IsDir() {
			t.Errorf("%s: %v, want a directory made by the walk", p, err)
		}
	}
	for _, p := range []string{"nowhere", "host/x", "g"} {
		if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists (%v), want nothing made there", p, err)
		}
	}
	if got := unix.Umask(0o077); got != 0o077 {
		t.Errorf("umask after createCwd = %#o, want 0o077 restored", got)
	}
}
