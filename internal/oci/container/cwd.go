package container

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/oci/linux/rootfs"
)

// createCwd makes the directory cwd and its missing parents (mode 0755,
// owned by the init's user: root of the container) when cwd does not
// exist, as runc does for process.cwd and docker for WORKDIR. It runs in
// the init after pivot_root (or chroot), so "/" is the container's root;
// every step is also resolved with openat2(RESOLVE_IN_ROOT |
// RESOLVE_NO_MAGICLINKS) from a handle on that root, so neither ".." nor a
// symlink of the rootfs (absolute, relative, or a magic link such as
// /proc/1/root when the container shares the host's PID namespace) can
// lead outside it. A symlink to a directory in the container is followed;
// a dangling one is an error, as with runc ("mkdir /x: file exists"); a
// path through a magic link or a file is left for chdir to refuse.
func createCwd(cwd string) error {
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	defer unix.Close(root)
	// Not cleaned: ".." is resolved where chdir will resolve it, after the
	// symlinks before it (inside the root).
	p := "/" + strings.TrimLeft(cwd, "/")
	dir, err := rootfs.OpenInRoot(root, p, unix.O_PATH|unix.O_DIRECTORY)
	if err == nil {
		unix.Close(dir)
		return nil
	}
	if !errors.Is(err, unix.ENOENT) {
		// chdir reports it (ENOTDIR, ELOOP, ...) with the usual message.
		return nil
	}
	// 0755 whatever umask the runtime was started with (no other
	// goroutine of the init creates files meanwhile).
	old := unix.Umask(0)
	defer unix.Umask(old)
	dir, err = rootfs.MkdirAllInRoot(root, p, 0o755, rootfs.MkdirOptions{DotDotAfterSymlinks: true, DanglingSymlinkExists: true})
	if err != nil {
		pe := err.(*os.PathError)
		return fmt.Errorf("mkdir %s: %w", pe.Path, pe.Err)
	}
	unix.Close(dir)
	return nil
}
