package container

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// bindSelf returns the running binary as seen through a private, detached,
// read-only bind mount of the file itself (open_tree with OPEN_TREE_CLONE:
// attached to no mount namespace). Executing it makes /proc/self/exe of the
// bootstrap and of the container's init point at that mount: reopening it
// for writing fails with EROFS, and the container cannot remount what is
// not in its mount namespace. It is much cheaper than copying the binary
// into a memfd, and needs CAP_SYS_ADMIN, so rootless runs fall back to the
// copy.
func bindSelf() (*os.File, error) {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/proc/self/exe", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open_tree own binary: %w", err)
	}
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("make own binary's mount read-only: %w", err)
	}
	return os.NewFile(uintptr(fd), "gantry-oci (read-only bind)"), nil
}

// protectedSelf returns the binary to execute the bootstrap from: a
// read-only detached bind mount when allowed, else a sealed memfd copy.
// GANTRY_OCI_SEAL=memfd forces the copy (for benchmarks and tests).
func protectedSelf() (*os.File, error) {
	if os.Getenv("GANTRY_OCI_SEAL") != "memfd" {
		if f, err := bindSelf(); err == nil {
			return f, nil
		}
	}
	return sealedSelf()
}

// selfPath is the path to execute f by. It names our pid, not "self":
// os/exec moves the child's fds around before execve, so the number may
// mean another file in the child.
func selfPath(f *os.File) string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), f.Fd())
}
