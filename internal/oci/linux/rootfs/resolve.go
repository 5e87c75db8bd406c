package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// root is a directory that paths are resolved in as if it were "/": no
// ".." or symlink (absolute or relative, also one swapped in during the
// walk) can leave it, and magic links (/proc/self/fd/N, /proc/PID/root)
// are refused. All resolution goes through openat2(RESOLVE_IN_ROOT).
type root struct {
	fd   *os.File
	path string // host path of the root, for messages and the containment check
}

func openRoot(path string) (*root, error) {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	if path != "/" {
		// Compare against the real path: Rootfs may go through symlinks.
		if real, err := os.Readlink(fdPath(f)); err == nil {
			path = real
		}
	}
	return &root{fd: f, path: path}, nil
}

func (r *root) Close() error { return r.fd.Close() }

// cleanPath turns a container path into a clean absolute one; ".." is
// removed lexically, before any symlink is looked at.
func cleanPath(p string) string { return filepath.Clean("/" + p) }

// hostPath is the (informational) host path of p, for messages.
func (r *root) hostPath(p string) string {
	return filepath.Join(r.path, cleanPath(p))
}

// open opens p inside the root. flags are open(2) flags; O_CLOEXEC is
// always added.
func (r *root) open(p string, flags int) (*os.File, error) {
	p = cleanPath(p)
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	var (
		fd  int
		err error
	)
	// openat2 says EAGAIN when a rename raced with the walk; retry a
	// bounded number of times.
	for range 64 {
		fd, err = unix.Openat2(int(r.fd.Fd()), "."+p, &how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: r.hostPath(p), Err: err}
	}
	return os.NewFile(uintptr(fd), r.hostPath(p)), nil
}

// mkdirAll creates the directory p and its missing parents inside the root
// and returns an O_PATH handle on it. Each directory is created relative to
// the handle of its (already resolved) parent.
func (r *root) mkdirAll(p string, mode uint32) (*os.File, error) {
	p = cleanPath(p)
	if f, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY); err == nil || !errors.Is(err, unix.ENOENT) {
		return f, err
	}
	cur, err := r.open("/", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return nil, err
	}
	sofar := "/"
	for _, name := range strings.Split(strings.TrimPrefix(p, "/"), "/") {
		next := filepath.Join(sofar, name)
		f, err := r.open(next, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(int(cur.Fd()), name, mode); err != nil && !errors.Is(err, unix.EEXIST) {
				cur.Close()
				return nil, &os.PathError{Op: "mkdirat", Path: r.hostPath(next), Err: err}
			}
			f, err = r.open(next, unix.O_PATH|unix.O_DIRECTORY)
		}
		cur.Close()
		if err != nil {
			return nil, err
		}
		cur, sofar = f, next
	}
	return cur, nil
}

// createFile makes sure p exists inside the root (creating an empty
// regular file and the missing parent directories) and returns an O_PATH
// handle on it. An existing p of any type is opened as is.
func (r *root) createFile(p string, mode uint32) (*os.File, error) {
	p = cleanPath(p)
	if f, err := r.open(p, unix.O_PATH); err == nil || !errors.Is(err, unix.ENOENT) {
		return f, err
	}
	dir, err := r.mkdirAll(filepath.Dir(p), 0o755)
	if err != nil {
		return nil, err
	}
	defer dir.Close()
	fd, err := unix.Openat(int(dir.Fd()), filepath.Base(p), unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_RDONLY|unix.O_CLOEXEC, mode)
	if err == nil {
		unix.Close(fd)
	} else if !errors.Is(err, unix.EEXIST) {
		return nil, &os.PathError{Op: "create", Path: r.hostPath(p), Err: err}
	}
	return r.open(p, unix.O_PATH)
}

// openParent resolves the parent directory of p inside the root, creating
// it if needed, and returns it with the last path element.
func (r *root) openParent(p string) (*os.File, string, error) {
	p = cleanPath(p)
	if p == "/" {
		return nil, "", fmt.Errorf("path %q has no parent", p)
	}
	dir, err := r.mkdirAll(filepath.Dir(p), 0o755)
	if err != nil {
		return nil, "", err
	}
	return dir, filepath.Base(p), nil
}

// fdPath is the magic-link path of an open file, for syscalls that take a
// path (mount(2)).
func fdPath(f *os.File) string {
	return "/proc/self/fd/" + strconv.Itoa(int(f.Fd()))
}

// checkInside verifies through /proc that f still lives inside the root.
func (r *root) checkInside(f *os.File) error {
	if r.path == "/" {
		return nil
	}
	got, err := os.Readlink(fdPath(f))
	if err != nil {
		return fmt.Errorf("check mount target %s: %w", f.Name(), err)
	}
	if got != r.path && !strings.HasPrefix(got, strings.TrimSuffix(r.path, "/")+"/") {
		return fmt.Errorf("mount target %s resolved to %q, outside the root filesystem %q", f.Name(), got, r.path)
	}
	return nil
}
