package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// preparer holds what Prepare needs while it mounts the spec entries.
type preparer struct {
	c       *Config
	root    *root
	label   string // SELinux mount label, "" when SELinux is off
	cgroups *cgroupInfo
}

// mountEntry mounts spec.Mounts[i] inside the root.
func (p *preparer) mountEntry(i int, m specs.Mount) error {
	dest := cleanPath(m.Destination)
	where := fmt.Sprintf("mounts[%d] (destination %q)", i, m.Destination)
	if m.Destination == "" {
		return fmt.Errorf("%s: empty destination: %w", where, errdefs.ErrInvalidArgument)
	}
	mo, err := ParseMountOptions(m.Options)
	if err != nil {
		return fmt.Errorf("%s: options: %w", where, err)
	}
	if m.Type == "bind" {
		mo.Flags |= unix.MS_BIND
	}
	bind := mo.Flags&unix.MS_BIND != 0
	idmap := mo.Idmap || len(m.UIDMappings) > 0 || len(m.GIDMappings) > 0
	if idmap && !bind {
		return fmt.Errorf("%s: idmapped mounts are only supported for bind mounts: %w", where, errdefs.ErrNotImplemented)
	}
	if err := checkProcDest(dest, m.Type, bind); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}

	switch {
	case bind:
		src := m.Source
		if !filepath.IsAbs(src) {
			src = filepath.Join(p.c.Bundle, src)
		}
		if err := p.bindMount(src, dest, mo, idmap, m); err != nil {
			if errors.Is(err, errdefs.ErrNotFound) {
				return fmt.Errorf("mounts[%d].source %q: %w", i, m.Source, err)
			}
			return fmt.Errorf("%s: %w", where, err)
		}
		return nil
	case m.Type == "cgroup" || m.Type == "cgroup2":
		err = p.mountCgroup(dest, mo)
	case m.Type == "sysfs":
		err = p.mountSysfs(m, dest, mo)
	case m.Type == "mqueue":
		err = p.mountFs(m.Source, dest, m.Type, mo, p.withLabel(mo.Data))
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY) {
			// No IPC namespace of our own: fall back to the host's.
			mo.Flags |= unix.MS_BIND | unix.MS_REC
			err = p.bindMount("/dev/mqueue", dest, mo, false, m)
		}
	case m.Type == "proc" || m.Type == "devpts":
		data := mo.Data
		if m.Type == "devpts" {
			data = p.withLabel(data)
		}
		err = p.mountFs(m.Source, dest, m.Type, mo, data)
	default:
		if m.Type == "" {
			return fmt.Errorf("%s: no type and no bind option: %w", where, errdefs.ErrInvalidArgument)
		}
		data := mo.Data
		if m.Type == "tmpfs" {
			data = p.withLabel(data)
		}
		err = p.mountFs(m.Source, dest, m.Type, mo, data)
	}
	if err != nil {
		return fmt.Errorf("%s: mount %s: %w", where, m.Type, err)
	}
	return nil
}

// checkProcDest applies the /proc rule by the destination as written,
// before anything is created for it and whether or not procfs is mounted
// there yet: on /proc only a proc mount, under /proc only bind mounts.
// Where a bind mount may go is judged on its resolved target
// (checkProcTarget).
func checkProcDest(dest, typ string, bind bool) error {
	switch {
	case dest == "/proc":
		if typ != "proc" || bind {
			return fmt.Errorf("only a proc mount may be mounted on /proc: %w", errdefs.ErrInvalidArgument)
		}
	case strings.HasPrefix(dest, "/proc/"):
		if !bind {
			return fmt.Errorf("a %s mount under /proc is not allowed (only bind mounts, onto the files lxcfs emulates): %w", typ, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// procBindable are the files of the container's /proc that a bind mount
// may cover: those that lxcfs and similar FUSE file systems emulate so
// that free, top or uptime show the container's share (runc's list).
var procBindable = []string{
	"/proc/cpuinfo", "/proc/diskstats", "/proc/meminfo", "/proc/stat",
	"/proc/swaps", "/proc/uptime", "/proc/loadavg", "/proc/slabinfo",
	"/proc/net/dev", "/proc/sys/kernel/ns_last_pid", "/proc/sys/crypto/fips_enabled",
}

// procRootIno is the inode number of the root directory of every procfs
// (PROC_ROOT_INO).
const procRootIno = 1

// checkProcTarget is the /proc rule, applied to the opened target of a
// mount: the destination resolved inside the root, symlinks of the image
// followed, on the very fd that the mount then goes on. When that is on a
// procfs (wherever it is mounted) it is refused, unless the mount is a
// proc mount on /proc, or a bind mount and the target is one of
// procBindable in the procfs on the root's /proc (CVE-2019-16884: a mount
// over /proc/self/attr/* defeats the LSM profile; gantryd's /etc/hosts,
// made a symlink by the image, would cover any file of the container's
// /proc).
func (p *preparer) checkProcTarget(dest string, target *os.File, typ string, bind bool) error {
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(target.Fd()), &sfs); err != nil {
		return &os.PathError{Op: "statfs", Path: target.Name(), Err: err}
	}
	if sfs.Type != unix.PROC_SUPER_MAGIC || typ == "proc" && dest == "/proc" && !bind {
		return nil
	}
	if bind {
		ok, err := p.root.isProcBindable(target)
		if ok || err != nil {
			return err
		}
	}
	return fmt.Errorf("destination resolves into procfs (%s): refused: only a proc mount on /proc, or a bind mount onto %s, may go there: %w",
		p.root.pathOf(target), strings.Join(procBindable, ", "), errdefs.ErrInvalidArgument)
}

// isProcBindable reports whether target, a file on a procfs, is one of
// procBindable: the same inode as that path resolved beneath the root's
// /proc, which must be the root of target's procfs (not a symlink, not
// another procfs, not a directory of one bound there). The lookup stays
// inside that procfs mount (RESOLVE_BENEATH|RESOLVE_NO_XDEV) and follows
// its own symlinks only (/proc/net -> self/net).
func (r *root) isProcBindable(target *os.File) (bool, error) {
	var want, st unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &want); err != nil {
		return false, &os.PathError{Op: "stat", Path: target.Name(), Err: err}
	}
	if want.Mode&unix.S_IFMT != unix.S_IFREG {
		return false, nil
	}
	proc, err := r.open("/proc", unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW)
	if err != nil {
		return false, nil
	}
	defer proc.Close()
	if err := unix.Fstat(int(proc.Fd()), &st); err != nil || st.Dev != want.Dev || st.Ino != procRootIno {
		return false, nil
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_MAGICLINKS,
	}
	for _, name := range procBindable {
		fd, err := unix.Openat2(int(proc.Fd()), strings.TrimPrefix(name, "/proc/"), &how)
		if err != nil {
			continue
		}
		err = unix.Fstat(fd, &st)
		unix.Close(fd)
		if err == nil && st.Dev == want.Dev && st.Ino == want.Ino {
			return true, nil
		}
	}
	return false, nil
}

// withLabel adds the SELinux context option to mount data.
func (p *preparer) withLabel(data string) string {
	if p.label == "" {
		return data
	}
	ctx := `context="` + p.label + `"`
	if data == "" {
		return ctx
	}
	return data + "," + ctx
}

// mountFs mounts a new file system of type typ on dest (a directory).
func (p *preparer) mountFs(source, dest, typ string, mo MountOptions, data string) error {
	target, err := p.root.mkdirAll(dest, 0o755)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := p.checkTarget(dest, target, typ, false); err != nil {
		return err
	}
	if source == "" {
		source = typ
	}
	flags := mo.Flags &^ (unix.MS_BIND | unix.MS_REC)
	if err := unix.Mount(source, fdPath(target), typ, flags, data); err != nil {
		return &os.PathError{Op: "mount " + typ, Path: target.Name(), Err: err}
	}
	return p.afterMount(dest, mo, "")
}

// checkTarget runs the checks on an opened, not yet mounted target.
func (p *preparer) checkTarget(dest string, target *os.File, typ string, bind bool) error {
	if err := p.root.checkInside(target); err != nil {
		return err
	}
	if typ == "proc" || typ == "sysfs" {
		// proc and sysfs go on an ordinary directory, never through a
		// symlink in the last path element.
		last, err := p.root.open(dest, unix.O_PATH|unix.O_NOFOLLOW)
		if err != nil {
			return err
		}
		var st unix.Stat_t
		err = unix.Fstat(int(last.Fd()), &st)
		last.Close()
		if err != nil {
			return &os.PathError{Op: "stat", Path: target.Name(), Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return fmt.Errorf("%s must be mounted on an ordinary directory, %s is not one: %w", typ, target.Name(), errdefs.ErrInvalidArgument)
		}
	}
	return p.checkProcTarget(dest, target, typ, bind)
}

// afterMount reopens the new mount at dest, checks it is inside the root,
// then applies the bind remount (when bindSrc is set), the propagation
// options and the recursive attributes.
func (p *preparer) afterMount(dest string, mo MountOptions, bindSrc string) error {
	mnt, err := p.root.open(dest, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("reopen mount: %w", err)
	}
	defer mnt.Close()
	if err := p.root.checkInside(mnt); err != nil {
		return err
	}
	if bindSrc != "" {
		if err := remountBind(mnt, mo.Flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT)); err != nil {
			return err
		}
	}
	return applyPropagationAndAttrs(mnt, mo)
}

func applyPropagationAndAttrs(mnt *os.File, mo MountOptions) error {
	for _, pf := range mo.Propagation {
		if err := unix.Mount("", fdPath(mnt), "", pf, ""); err != nil {
			return &os.PathError{Op: "set propagation", Path: mnt.Name(), Err: err}
		}
	}
	if mo.AttrSet != 0 || mo.AttrClr != 0 {
		attr := unix.MountAttr{Attr_set: mo.AttrSet, Attr_clr: mo.AttrClr}
		if err := unix.MountSetattr(int(mnt.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
			return &os.PathError{Op: "mount_setattr", Path: mnt.Name(), Err: err}
		}
	}
	return nil
}

// lockedFlags maps statfs flags to the MS_* flags a remount must keep.
var lockedFlags = []struct {
	st uint64
	ms uintptr
}{
	{unix.ST_RDONLY, unix.MS_RDONLY},
	{unix.ST_NOSUID, unix.MS_NOSUID},
	{unix.ST_NODEV, unix.MS_NODEV},
	{unix.ST_NOEXEC, unix.MS_NOEXEC},
	{unix.ST_NOATIME, unix.MS_NOATIME},
	{unix.ST_NODIRATIME, unix.MS_NODIRATIME},
	{unix.ST_RELATIME, unix.MS_RELATIME},
}

// remountBind applies per-mount flags to a bind mount. A bind mount takes
// its flags from the source, so ro & co need MS_REMOUNT|MS_BIND. When the
// kernel refuses (EPERM: the source's nosuid/nodev/noexec/... are locked,
// as in a user namespace), it retries keeping the flags the mount has.
func remountBind(mnt *os.File, flags uintptr) error {
	if flags == 0 {
		return nil
	}
	err := unix.Mount("", fdPath(mnt), "", unix.MS_REMOUNT|unix.MS_BIND|flags, "")
	if errors.Is(err, unix.EPERM) {
		var sfs unix.Statfs_t
		if serr := unix.Fstatfs(int(mnt.Fd()), &sfs); serr == nil {
			keep := flags
			for _, l := range lockedFlags {
				if uint64(sfs.Flags)&l.st != 0 {
					keep |= l.ms
				}
			}
			if keep != flags {
				err = unix.Mount("", fdPath(mnt), "", unix.MS_REMOUNT|unix.MS_BIND|keep, "")
			}
		}
	}
	if err != nil {
		return &os.PathError{Op: "remount bind", Path: mnt.Name(), Err: err}
	}
	return nil
}

// bindMount bind-mounts the host path src on dest, creating dest as a
// directory or a file to match src.
func (p *preparer) bindMount(src, dest string, mo MountOptions, idmap bool, m specs.Mount) error {
	st, err := os.Stat(src)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
		}
		return fmt.Errorf("bind source: %w", err)
	}
	var target *os.File
	if st.IsDir() {
		target, err = p.root.mkdirAll(dest, 0o755)
	} else {
		target, err = p.root.createFile(dest, 0o644)
	}
	if err != nil {
		return err
	}
	defer target.Close()
	if err := p.checkTarget(dest, target, "bind", true); err != nil {
		return err
	}
	if idmap {
		err = p.idmapBind(src, target, mo, m)
	} else {
		err = unix.Mount(src, fdPath(target), "", unix.MS_BIND|mo.Flags&unix.MS_REC, "")
		if err != nil {
			err = &os.PathError{Op: "bind mount " + src, Path: target.Name(), Err: err}
		}
	}
	if err != nil {
		return err
	}
	return p.afterMount(dest, mo, src)
}

// mountSysfs mounts sysfs, or, in a user namespace that does not own a
// network namespace (where the kernel refuses a sysfs mount), rbinds the
// host's /sys.
func (p *preparer) mountSysfs(m specs.Mount, dest string, mo MountOptions) error {
	if !p.c.UserNS || hasNamespace(p.c.Spec, specs.NetworkNamespace) {
		err := p.mountFs(m.Source, dest, "sysfs", mo, mo.Data)
		if err == nil || !p.c.UserNS || !(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
			return err
		}
	}
	mo.Flags |= unix.MS_BIND | unix.MS_REC
	return p.bindMount("/sys", dest, mo, false, m)
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	if s == nil || s.Linux == nil {
		return false
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == t {
			return true
		}
	}
	return false
}
