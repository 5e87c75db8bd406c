package rootfs

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// idmapBind attaches an idmapped clone of src on target: open_tree(CLONE),
// mount_setattr(MOUNT_ATTR_IDMAP) with a user namespace holding the
// mount's mappings, move_mount.
func (p *preparer) idmapBind(src string, target *os.File, mo MountOptions, m specs.Mount) error {
	uids, gids := m.UIDMappings, m.GIDMappings
	if len(uids) == 0 && len(gids) == 0 && p.c.Spec.Linux != nil {
		// "idmap" without mappings uses the container's user namespace ones.
		uids, gids = p.c.Spec.Linux.UIDMappings, p.c.Spec.Linux.GIDMappings
	}
	if len(uids) == 0 || len(gids) == 0 {
		return fmt.Errorf("idmapped mount needs both uidMappings and gidMappings: %w", errdefs.ErrInvalidArgument)
	}
	userns, err := newUserNamespace(uids, gids)
	if err != nil {
		return err
	}
	defer userns.Close()

	flags := uint(unix.OPEN_TREE_CLONE | unix.OPEN_TREE_CLOEXEC)
	if mo.Recursive || mo.Flags&unix.MS_REC != 0 {
		flags |= unix.AT_RECURSIVE
	}
	tree, err := unix.OpenTree(unix.AT_FDCWD, src, flags)
	if err != nil {
		return &os.PathError{Op: "open_tree", Path: src, Err: err}
	}
	defer unix.Close(tree)
	var setFlags uint = unix.AT_EMPTY_PATH
	if flags&unix.AT_RECURSIVE != 0 {
		setFlags |= unix.AT_RECURSIVE
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(userns.Fd())}
	if err := unix.MountSetattr(tree, "", setFlags, &attr); err != nil {
		return fmt.Errorf("idmap mount of %s (the kernel or the file system does not support idmapped mounts here): %w",
			src, &os.PathError{Op: "mount_setattr", Path: src, Err: err})
	}
	if err := unix.MoveMount(tree, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &os.PathError{Op: "move_mount", Path: target.Name(), Err: err}
	}
	return nil
}

// newUserNamespace returns a handle on a new user namespace with the given
// mappings. It starts a helper with clone(CLONE_NEWUSER) that stops (traced)
// at its execve before running any code, opens its /proc/PID/ns/user and
// kills it.
func newUserNamespace(uids, gids []specs.LinuxIDMapping) (*os.File, error) {
	conv := func(ms []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		out := make([]syscall.SysProcIDMap, 0, len(ms))
		for _, m := range ms {
			out = append(out, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		return out
	}
	// The tracer of the helper is the thread that forks it.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := exec.Command("/proc/self/exe")
	cmd.Args = []string{"gantry-userns-helper"}
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: conv(uids),
		GidMappings: conv(gids),
		Ptrace:      true,
		Pdeathsig:   syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start user namespace helper for idmapped mount: %w", err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	f, err := os.Open("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/user")
	if err != nil {
		return nil, fmt.Errorf("open user namespace of idmap helper: %w", err)
	}
	return f, nil
}
