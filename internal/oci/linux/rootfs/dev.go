package rootfs

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func u32(v uint32) *uint32 { return &v }

func fm(m os.FileMode) *os.FileMode { return &m }

// defaultDevices are the devices config-linux.md "Default Devices" requires.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0, FileMode: fm(0o666), UID: u32(0), GID: u32(0)},
}

// devMount reports how the config mounts /dev: "tmpfs" (or another new
// file system), "bind", or "" when it does not.
func devMount(s *specs.Spec) string {
	kind := ""
	for _, m := range s.Mounts {
		if cleanPath(m.Destination) != "/dev" {
			continue
		}
		mo, _ := ParseMountOptions(m.Options)
		if m.Type == "bind" || mo.Flags&unix.MS_BIND != 0 {
			kind = "bind"
		} else {
			kind = m.Type
		}
	}
	return kind
}

func hasProcMount(s *specs.Spec) bool {
	for _, m := range s.Mounts {
		if cleanPath(m.Destination) == "/proc" && m.Type == "proc" {
			return true
		}
	}
	return false
}

// setupDevices creates linux.devices, and, when /dev is a new tmpfs, the
// default devices and the /dev symlinks. A bind-mounted /dev is left alone.
func (p *preparer) setupDevices() error {
	kind := devMount(p.c.Spec)
	if kind == "bind" {
		return nil
	}
	var devices []specs.LinuxDevice
	if p.c.Spec.Linux != nil {
		devices = p.c.Spec.Linux.Devices
	}
	configured := map[string]bool{}
	for _, d := range devices {
		configured[cleanPath(d.Path)] = true
	}
	nConfigured := len(devices)
	if kind != "" {
		for _, d := range defaultDevices {
			if !configured[d.Path] {
				devices = append(devices, d)
			}
		}
	}
	old := unix.Umask(0)
	defer unix.Umask(old)
	for i, d := range devices {
		if err := p.createDevice(d); err != nil {
			if i < nConfigured {
				return fmt.Errorf("linux.devices[%d] (%s): %w", i, d.Path, err)
			}
			return fmt.Errorf("default device %s: %w", d.Path, err)
		}
	}
	if kind == "" {
		return nil
	}
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
	}
	if !configured["/dev/ptmx"] {
		links = append(links, [2]string{"pts/ptmx", "/dev/ptmx"})
	}
	if hasProcMount(p.c.Spec) {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		if err := p.symlink(l[0], l[1]); err != nil {
			return err
		}
	}
	return nil
}

// symlink creates link -> target inside the root, replacing a non-directory
// that is in the way.
func (p *preparer) symlink(target, link string) error {
	dir, name, err := p.root.openParent(link)
	if err != nil {
		return fmt.Errorf("symlink %s: %w", link, err)
	}
	defer dir.Close()
	err = unix.Symlinkat(target, int(dir.Fd()), name)
	if errors.Is(err, unix.EEXIST) {
		if rerr := unix.Unlinkat(int(dir.Fd()), name, 0); rerr == nil {
			err = unix.Symlinkat(target, int(dir.Fd()), name)
		} else {
			err = nil // an existing directory stays
		}
	}
	if err != nil {
		return &os.PathError{Op: "symlink", Path: p.root.hostPath(link), Err: err}
	}
	return nil
}

func deviceType(t string) (uint32, error) {
	switch t {
	case "c", "u":
		return unix.S_IFCHR, nil
	case "b":
		return unix.S_IFBLK, nil
	case "p":
		return unix.S_IFIFO, nil
	}
	return 0, fmt.Errorf("type %q: %w", t, errdefs.ErrInvalidArgument)
}

// createDevice makes one device node with mknod, or, in a user namespace
// (where mknod of devices is refused), bind-mounts the host's node at the
// same path onto an empty file.
func (p *preparer) createDevice(d specs.LinuxDevice) error {
	typ, err := deviceType(d.Type)
	if err != nil {
		return err
	}
	if d.Path == "" || cleanPath(d.Path) == "/" {
		return fmt.Errorf("path %q: %w", d.Path, errdefs.ErrInvalidArgument)
	}
	if p.c.UserNS && typ != unix.S_IFIFO {
		target, err := p.root.createFile(d.Path, 0o000)
		if err != nil {
			return err
		}
		defer target.Close()
		if err := p.checkTarget(d.Path, target, "bind", true); err != nil {
			return err
		}
		if err := unix.Mount(d.Path, fdPath(target), "", unix.MS_BIND, ""); err != nil {
			return &os.PathError{Op: "bind mount host device " + d.Path, Path: target.Name(), Err: err}
		}
		return nil
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(d.FileMode.Perm())
	}
	dir, name, err := p.root.openParent(d.Path)
	if err != nil {
		return err
	}
	defer dir.Close()
	err = unix.Mknodat(int(dir.Fd()), name, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if errors.Is(err, unix.EEXIST) {
		// A node already there (for example from the image) is replaced
		// so that type and numbers are the configured ones.
		if uerr := unix.Unlinkat(int(dir.Fd()), name, 0); uerr == nil {
			err = unix.Mknodat(int(dir.Fd()), name, typ|mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
		}
	}
	if err != nil {
		return &os.PathError{Op: "mknod", Path: p.root.hostPath(d.Path), Err: err}
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if uid != -1 || gid != -1 {
		if err := unix.Fchownat(int(dir.Fd()), name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "chown", Path: p.root.hostPath(d.Path), Err: err}
		}
	}
	return nil
}
