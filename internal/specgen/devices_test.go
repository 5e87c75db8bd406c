package specgen

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeDev makes a /dev-like tree in a temporary directory (needs root for
// mknod) and points hostDevDir at it for the test.
func fakeDev(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mknod needs root")
	}
	dir := t.TempDir()
	mk := func(rel string, mode uint32, major, minor uint32) {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mknod(p, mode, int(unix.Mkdev(major, minor))); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(p, mode&0o7777); err != nil {
			t.Fatal(err)
		}
	}
	mk("null", unix.S_IFCHR|0o666, 1, 3)
	mk("loop0", unix.S_IFBLK|0o660, 7, 0)
	mk("net/tun", unix.S_IFCHR|0o600, 10, 200)
	mk("console", unix.S_IFCHR|0o600, 5, 1)
	mk("ptmx", unix.S_IFCHR|0o666, 5, 2)
	mk("pts/0", unix.S_IFCHR|0o620, 136, 0)
	mk(".udev/x", unix.S_IFCHR|0o600, 1, 3)
	mk("shm/x", unix.S_IFCHR|0o600, 1, 3)
	if err := os.WriteFile(filepath.Join(dir, "regular"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/self/fd", filepath.Join(dir, "fd")); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(filepath.Join(dir, "loop0"), 0, 6); err != nil {
		t.Fatal(err)
	}
	old := hostDevDir
	hostDevDir = dir
	t.Cleanup(func() { hostDevDir = old })
	return dir
}

// TestHostDevices: every device node of the host's /dev, with its type,
// numbers, mode and owner, but for the runtime's own (console, ptmx, pts,
// shm) and hidden directories; files and links are not devices.
func TestHostDevices(t *testing.T) {
	dir := fakeDev(t)
	devs, err := HostDevices(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range devs {
		got = append(got, d.Path)
		switch d.Path {
		case "/dev/loop0":
			if d.Type != "b" || d.Major != 7 || d.Minor != 0 || *d.FileMode != 0o660 || *d.UID != 0 || *d.GID != 6 {
				t.Errorf("loop0: %+v (mode %o, gid %d)", d, *d.FileMode, *d.GID)
			}
		case "/dev/net/tun":
			if d.Type != "c" || d.Major != 10 || d.Minor != 200 || *d.FileMode != 0o600 {
				t.Errorf("net/tun: %+v", d)
			}
		}
	}
	slices.Sort(got)
	if want := []string{"/dev/loop0", "/dev/net/tun", "/dev/null"}; !slices.Equal(got, want) {
		t.Errorf("HostDevices = %v, want %v", got, want)
	}
	if _, err := HostDevices(filepath.Join(dir, "missing")); err == nil {
		t.Error("HostDevices of a missing directory: no error")
	}
}

// TestPrivilegedGetsHostDevices: a privileged spec lists the host's
// devices (docker's --privileged); an unprivileged one lists none.
func TestPrivilegedGetsHostDevices(t *testing.T) {
	fakeDev(t)
	spec, err := Generate(defaultImage(), testRootfs, Options{Privileged: true})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(spec.Linux.Devices); n != 3 {
		t.Errorf("privileged: %d devices, want the 3 host devices: %+v", n, spec.Linux.Devices)
	}
	spec, err = Generate(defaultImage(), testRootfs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(spec.Linux.Devices) != 0 {
		t.Errorf("unprivileged: devices %+v, want none", spec.Linux.Devices)
	}
}
