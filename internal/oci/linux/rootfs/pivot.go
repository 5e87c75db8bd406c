package rootfs

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// PivotRoot makes Rootfs the root ("/") of the mount namespace:
// pivot_root(".", ".") then a lazy unmount of the old root stacked on it;
// or, with NoPivot, detaching the mounts unrelated to Rootfs, MS_MOVE of
// Rootfs onto "/" and chroot. Leaves cwd at "/".
func PivotRoot(c *Config) error {
	if c == nil || c.Rootfs == "" {
		return fmt.Errorf("pivot root: no rootfs")
	}
	if c.NoPivot {
		return moveRoot(c.Rootfs)
	}
	return pivotRoot(c.Rootfs)
}

func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open old root", Path: "/", Err: err}
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open new root", Path: rootfs, Err: err}
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return &os.PathError{Op: "chdir", Path: rootfs, Err: err}
	}
	// The old root ends up stacked on top of the new one, at ".".
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.PathError{Op: "pivot_root", Path: rootfs, Err: err}
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return fmt.Errorf("chdir to old root: %w", err)
	}
	// Make sure the unmount cannot propagate anywhere.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("make old root rslave: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}

// moveRoot is the --no-pivot path (for a root on ramfs, where pivot_root
// fails). chroot alone leaves the host mounts reachable through open file
// systems, so every mount that is neither Rootfs, under it, nor one of its
// ancestors is detached (or, if it cannot be, hidden under an empty
// read-only tmpfs) first.
func moveRoot(rootfs string) error {
	text, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return fmt.Errorf("no-pivot: read mountinfo: %w", err)
	}
	var points []string
	for _, m := range parseMountInfo(string(text)) {
		p := m.mountpoint
		if p == "/" || p == rootfs || strings.HasPrefix(p, rootfs+"/") || strings.HasPrefix(rootfs, p+"/") {
			continue
		}
		points = append(points, p)
	}
	// Deepest first.
	sort.Slice(points, func(i, j int) bool { return len(points[i]) > len(points[j]) })
	for _, p := range points {
		err := unix.Unmount(p, unix.MNT_DETACH)
		if err == nil || errors.Is(err, unix.ENOENT) {
			continue
		}
		if errors.Is(err, unix.EINVAL) {
			// Already gone with a parent.
			if _, serr := os.Lstat(p); serr != nil {
				continue
			}
		}
		if merr := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=0"); merr != nil {
			return fmt.Errorf("no-pivot: hide host mount %q: unmount: %v; cover: %w", p, err, merr)
		}
	}
	if err := unix.Chdir(rootfs); err != nil {
		return &os.PathError{Op: "chdir", Path: rootfs, Err: err}
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return &os.PathError{Op: "move mount onto /", Path: rootfs, Err: err}
	}
	if err := unix.Chroot("."); err != nil {
		return &os.PathError{Op: "chroot", Path: rootfs, Err: err}
	}
	if err := unix.Chdir("/"); err != nil {
		return fmt.Errorf("chdir /: %w", err)
	}
	return nil
}
