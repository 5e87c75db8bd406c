package rootfs

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Finalize runs after PivotRoot: linux.readonlyPaths (recursive bind made
// ro,nosuid,nodev,noexec on every submount), linux.maskedPaths (/dev/null
// bound over files, an empty read-only tmpfs over directories; missing
// paths are skipped), root.readonly (the root mount made read-only) and
// linux.rootfsPropagation on "/". It uses the new mount API on handles
// opened with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS), so it does
// not need /proc in the container.
func Finalize(c *Config) error {
	if c == nil || c.Spec == nil {
		return fmt.Errorf("rootfs finalize: no spec: %w", errdefs.ErrInvalidArgument)
	}
	r, err := openRoot("/")
	if err != nil {
		return fmt.Errorf("rootfs finalize: %w", err)
	}
	defer r.Close()
	if l := c.Spec.Linux; l != nil {
		for i, p := range l.ReadonlyPaths {
			if err := readonlyPath(r, p); err != nil {
				return fmt.Errorf("linux.readonlyPaths[%d] %q: %w", i, p, err)
			}
		}
		for i, p := range l.MaskedPaths {
			if err := maskPath(r, p); err != nil {
				return fmt.Errorf("linux.maskedPaths[%d] %q: %w", i, p, err)
			}
		}
	}
	if c.Spec.Root != nil && c.Spec.Root.Readonly {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(unix.AT_FDCWD, "/", 0, &attr); err != nil {
			return fmt.Errorf("root.readonly: make / read-only: %w", err)
		}
	}
	if c.Spec.Linux != nil && c.Spec.Linux.RootfsPropagation != "" {
		flag, ok := propagationOptions[c.Spec.Linux.RootfsPropagation]
		if !ok {
			return fmt.Errorf("linux.rootfsPropagation %q: %w", c.Spec.Linux.RootfsPropagation, errdefs.ErrInvalidArgument)
		}
		if err := unix.Mount("", "/", "", flag, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation %q: %w", c.Spec.Linux.RootfsPropagation, err)
		}
	}
	return nil
}

// readonlyPath makes p (and every mount below it) read-only, nosuid, nodev
// and noexec by attaching a recursive, read-only clone of it on itself.
// The flags are set recursively on the clone before it is attached and
// only added, so the container cannot get write access back through a
// submount or by remounting a locked mount.
func readonlyPath(r *root, p string) error {
	target, err := r.open(p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer target.Close()
	tree, err := unix.OpenTree(int(target.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH|unix.AT_RECURSIVE)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: p, Err: err}
	}
	defer unix.Close(tree)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(tree, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr); err != nil {
		return &os.PathError{Op: "mount_setattr", Path: p, Err: err}
	}
	if err := unix.MoveMount(tree, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: p, Err: err}
	}
	return nil
}

// maskPath hides p: an empty read-only tmpfs over a directory, the
// container's /dev/null (checked to be the real 1:3 character device) over
// anything else.
func maskPath(r *root, p string) error {
	target, err := r.open(p, unix.O_PATH)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer target.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(target.Fd()), &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	var mnt int
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		mnt, err = emptyTmpfs()
	} else {
		mnt, err = devNullClone(r)
	}
	if err != nil {
		return err
	}
	defer unix.Close(mnt)
	if err := unix.MoveMount(mnt, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: p, Err: err}
	}
	return nil
}

// emptyTmpfs returns a detached, read-only, empty tmpfs mount.
func emptyTmpfs() (int, error) {
	fsfd, err := unix.Fsopen("tmpfs", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsopen tmpfs: %w", err)
	}
	defer unix.Close(fsfd)
	if err := unix.FsconfigSetString(fsfd, "size", "0"); err != nil {
		return -1, fmt.Errorf("fsconfig tmpfs size: %w", err)
	}
	if err := unix.FsconfigSetString(fsfd, "mode", "0755"); err != nil {
		return -1, fmt.Errorf("fsconfig tmpfs mode: %w", err)
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return -1, fmt.Errorf("fsconfig create tmpfs: %w", err)
	}
	mnt, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)
	if err != nil {
		return -1, fmt.Errorf("fsmount tmpfs: %w", err)
	}
	return mnt, nil
}

// devNullClone returns a detached bind of the container's /dev/null.
func devNullClone(r *root) (int, error) {
	null, err := r.open("/dev/null", unix.O_PATH|unix.O_NOFOLLOW)
	if err != nil {
		return -1, fmt.Errorf("open /dev/null: %w", err)
	}
	defer null.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(null.Fd()), &st); err != nil {
		return -1, fmt.Errorf("stat /dev/null: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
		return -1, fmt.Errorf("/dev/null is not the null device: %w", errdefs.ErrFailedPrecondition)
	}
	mnt, err := unix.OpenTree(int(null.Fd()), "", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_EMPTY_PATH)
	if err != nil {
		return -1, fmt.Errorf("open_tree /dev/null: %w", err)
	}
	return mnt, nil
}
