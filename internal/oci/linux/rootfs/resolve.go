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
	fd, err := OpenInRoot(int(r.fd.Fd()), p, flags)
	if err != nil {
		return nil, &os.PathError{Op: "openat2", Path: r.hostPath(p), Err: err}
	}
	return os.NewFile(uintptr(fd), r.hostPath(p)), nil
}

// mkdirAll creates the directory p and its missing parents inside the root
// (".." removed lexically first) and returns an O_PATH handle on it.
func (r *root) mkdirAll(p string, mode uint32) (*os.File, error) {
	p = cleanPath(p)
	if f, err := r.open(p, unix.O_PATH|unix.O_DIRECTORY); err == nil || !errors.Is(err, unix.ENOENT) {
		return f, err
	}
	fd, err := MkdirAllInRoot(int(r.fd.Fd()), p, mode, MkdirOptions{})
	if err != nil {
		pe := err.(*os.PathError)
		return nil, &os.PathError{Op: pe.Op, Path: r.hostPath(pe.Path), Err: pe.Err}
	}
	return os.NewFile(uintptr(fd), r.hostPath(p)), nil
}

// OpenInRoot opens p (absolute, not cleaned) inside the directory fd root,
// as a root resolves paths, with the open(2) flags plus O_CLOEXEC, and
// returns the new fd or the bare errno.
func OpenInRoot(root int, p string, flags int) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	// openat2 says EAGAIN when a rename raced with the walk: 64 tries at
	// most, the last one's result returned as it is.
	for range 63 {
		fd, err := unix.Openat2(root, "."+p, &how)
		if !errors.Is(err, unix.EAGAIN) && !errors.Is(err, unix.EINTR) {
			return fd, err
		}
	}
	return unix.Openat2(root, "."+p, &how)
}

// MkdirOptions are what MkdirAllInRoot's callers disagree on. The zero
// value is what the mounts of the rootfs want.
type MkdirOptions struct {
	// DotDotAfterSymlinks leaves ".." in the path, to be resolved during
	// the walk from wherever the components before it led, symlinks
	// followed (inside the root), as chdir(2) resolves it: "/link/../x"
	// is x beside link's target. Without it ".." is removed lexically
	// first, before any symlink is looked at: "/link/../x" is "/x".
	DotDotAfterSymlinks bool
	// DanglingSymlinkExists reports a component that is a dangling symlink
	// as EEXIST, what mkdir(2) of that name says (as runc: "mkdir /x: file
	// exists"). Without it the error is the ENOENT of resolving it.
	DanglingSymlinkExists bool
}

// MkdirAllInRoot creates the directory p (absolute) and its missing
// parents inside the directory fd root, each resolved with OpenInRoot and
// made by mkdirat(2) relative to its resolved parent (mode less the
// umask), and returns an O_PATH fd on p. A symlink to a directory is
// followed. An error is an *os.PathError naming the syscall and the path
// inside root.
func MkdirAllInRoot(root int, p string, mode uint32, o MkdirOptions) (int, error) {
	if !o.DotDotAfterSymlinks {
		p = cleanPath(p)
	}
	cur, err := OpenInRoot(root, "/", unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		return -1, &os.PathError{Op: "openat2", Path: "/", Err: err}
	}
	sofar := ""
	for _, name := range strings.Split(p, "/") {
		if name == "" || name == "." {
			continue
		}
		next := sofar + "/" + name
		f, err := OpenInRoot(root, next, unix.O_PATH|unix.O_DIRECTORY)
		if errors.Is(err, unix.ENOENT) {
			if err := unix.Mkdirat(cur, name, mode); err != nil && !errors.Is(err, unix.EEXIST) {
				unix.Close(cur)
				return -1, &os.PathError{Op: "mkdirat", Path: next, Err: err}
			}
			f, err = OpenInRoot(root, next, unix.O_PATH|unix.O_DIRECTORY)
			if errors.Is(err, unix.ENOENT) && o.DanglingSymlinkExists {
				// mkdirat found a name there, resolving finds nothing.
				err = unix.EEXIST
			}
		}
		unix.Close(cur)
		if err != nil {
			return -1, &os.PathError{Op: "openat2", Path: next, Err: err}
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
	if _, ok := r.inside(got); !ok {
		return fmt.Errorf("mount target %s resolved to %q, outside the root filesystem %q", f.Name(), got, r.path)
	}
	return nil
}

// inside returns the host path p as a path in the root, and whether p is
// in the root at all.
func (r *root) inside(p string) (string, bool) {
	if r.path == "/" {
		return p, true
	}
	if p == r.path {
		return "/", true
	}
	rel, ok := strings.CutPrefix(p, strings.TrimSuffix(r.path, "/")+"/")
	return "/" + rel, ok
}

// pathOf is where the kernel says f is, as a path in the root (the host
// path when f is not in the root), for messages.
func (r *root) pathOf(f *os.File) string {
	got, err := os.Readlink(fdPath(f))
	if err != nil {
		return f.Name()
	}
	if p, ok := r.inside(got); ok {
		return p
	}
	return got
}
