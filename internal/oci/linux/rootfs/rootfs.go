package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Config describes the filesystem view the container init builds.
type Config struct {
	Spec     *specs.Spec
	Rootfs   string // absolute host path of the root filesystem (spec.Root.Path already resolved against the bundle)
	Bundle   string // absolute bundle dir (relative bind sources resolve against it)
	NoPivot  bool   // --no-pivot: MS_MOVE + chroot instead of pivot_root
	UserNS   bool   // container has a new user namespace: device nodes are bind-mounted from the host instead of mknod'ed
	CgroupNS bool   // container has its own cgroup namespace (cgroup mounts behave differently)
}

// Prepare runs before pivot_root, in the container's new mount namespace.
// It makes "/" rslave (rprivate when linux.rootfsPropagation asks for
// private) so nothing propagates to the host, bind-mounts Rootfs on itself,
// mounts every spec.Mounts entry in order with its destination resolved
// inside Rootfs, then creates linux.devices and, when /dev is a new tmpfs,
// the default devices and the /dev symlinks (fd, stdin, stdout, stderr,
// ptmx -> pts/ptmx, core -> /proc/kcore when /proc is mounted). A
// bind-mounted /dev gets no devices. /dev/console is the caller's.
func Prepare(c *Config) error {
	if c == nil || c.Spec == nil {
		return fmt.Errorf("rootfs prepare: no spec: %w", errdefs.ErrInvalidArgument)
	}
	if !filepath.IsAbs(c.Rootfs) {
		return fmt.Errorf("rootfs prepare: root path %q is not absolute: %w", c.Rootfs, errdefs.ErrInvalidArgument)
	}
	base := uintptr(unix.MS_SLAVE | unix.MS_REC)
	if c.Spec.Linux != nil {
		switch c.Spec.Linux.RootfsPropagation {
		case "", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
		case "private", "rprivate":
			base = unix.MS_PRIVATE | unix.MS_REC
		default:
			return fmt.Errorf("linux.rootfsPropagation %q: %w", c.Spec.Linux.RootfsPropagation, errdefs.ErrInvalidArgument)
		}
	}
	if err := unix.Mount("", "/", "", base, ""); err != nil {
		return fmt.Errorf("make / %s: %w", propagationName(base), err)
	}
	if err := unix.Mount(c.Rootfs, c.Rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &os.PathError{Op: "bind mount rootfs on itself", Path: c.Rootfs, Err: err}
	}
	r, err := openRoot(c.Rootfs)
	if err != nil {
		return fmt.Errorf("root.path: %w", err)
	}
	defer r.Close()
	p := &preparer{c: c, root: r}
	if c.Spec.Linux != nil && c.Spec.Linux.MountLabel != "" && selinuxEnabled() {
		p.label = c.Spec.Linux.MountLabel
	}
	for i, m := range c.Spec.Mounts {
		if err := p.mountEntry(i, m); err != nil {
			return err
		}
	}
	return p.setupDevices()
}

func propagationName(f uintptr) string {
	if f&unix.MS_PRIVATE != 0 {
		return "rprivate"
	}
	return "rslave"
}

// selinuxEnabled reports whether SELinux is mounted and readable.
func selinuxEnabled() bool {
	if _, err := os.Stat("/sys/fs/selinux"); err != nil {
		return false
	}
	_, err := os.ReadFile("/sys/fs/selinux/enforce")
	return err == nil
}
