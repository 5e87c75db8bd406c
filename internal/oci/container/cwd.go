package container

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
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
	dir, err := openInRoot(root, p)
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
	cur, err := openInRoot(root, "/")
	if err != nil {
		return fmt.Errorf("open /: %w", err)
	}
	sofar := ""
	for _, name := range strings.Split(p, "/") {
		if name == "" || name == "." {
			continue
		}
		next := sofar + "/" + name
		f, err := openInRoot(root, next)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(cur, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(cur)
				return fmt.Errorf("mkdir %s: %w", next, err)
			}
			f, err = openInRoot(root, next)
			if errors.Is(err, unix.ENOENT) {
				// mkdirat found a name there, resolving finds nothing:
				// a dangling symlink.
				err = unix.EEXIST
			}
		}
		unix.Close(cur)
		if err != nil {
			return fmt.Errorf("mkdir %s: %w", next, err)
		}
		cur, sofar = f, next
	}
	unix.Close(cur)
	return nil
}

// openInRoot opens the directory p (absolute) as an O_PATH handle,
// resolved inside root.
func openInRoot(root int, p string) (int, error) {
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	for range 64 {
		// EAGAIN: a rename raced with the walk.
		fd, err := unix.Openat2(root, "."+p, &how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
	return -1, unix.EAGAIN
}
