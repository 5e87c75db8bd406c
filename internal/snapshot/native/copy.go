package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// copyTree copies the contents of the directory src into the existing
// directory dst: every file type, owners, modes (setuid, setgid, sticky
// included), xattrs, hardlinks (as hardlinks) and times; symlinks are copied,
// never followed. dst's own metadata is set from src after its contents.
func copyTree(ctx context.Context, src, dst string) error {
	c := &copier{ctx: ctx, links: map[inode]string{}}
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("stat %q: %w", src, err)
	}
	if err := c.copyDir(src, dst); err != nil {
		return err
	}
	return c.meta(src, dst, &st)
}

type inode struct{ dev, ino uint64 }

type copier struct {
	ctx   context.Context
	links map[inode]string
}

func (c *copier) copyDir(src, dst string) error {
	if err := c.ctx.Err(); err != nil {
		return err
	}
	f, err := os.Open(src)
	if err != nil {
		return err
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("read directory %q: %w", src, err)
	}
	for _, n := range names {
		if err := c.copyEntry(filepath.Join(src, n), filepath.Join(dst, n)); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) copyEntry(src, dst string) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return fmt.Errorf("stat %q: %w", src, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdir(dst, 0o700); err != nil {
			return fmt.Errorf("create directory %q: %w", dst, err)
		}
		if err := c.copyDir(src, dst); err != nil {
			return err
		}
	case unix.S_IFREG:
		if st.Nlink > 1 {
			k := inode{uint64(st.Dev), st.Ino}
			if first, ok := c.links[k]; ok {
				if err := unix.Link(first, dst); err != nil {
					return fmt.Errorf("hardlink %q to %q: %w", dst, first, err)
				}
				return nil
			}
			c.links[k] = dst
		}
		if err := c.copyFile(src, dst); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := unix.Symlink(target, dst); err != nil {
			return fmt.Errorf("create symlink %q: %w", dst, err)
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO, unix.S_IFSOCK:
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return fmt.Errorf("create node %q: %w", dst, err)
		}
	default:
		return fmt.Errorf("copy %q: unknown file type %#o", src, st.Mode&unix.S_IFMT)
	}
	return c.meta(src, dst, &st)
}

func (c *copier) copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	// *os.File to *os.File uses copy_file_range (reflinks where supported).
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %q: %w", src, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("copy %q: %w", src, err)
	}
	return nil
}

// meta copies owner, mode, xattrs and times of src (stat st) to dst, in the
// order that keeps them: chown clears setuid bits and file capabilities.
func (c *copier) meta(src, dst string, st *unix.Stat_t) error {
	if err := unix.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("chown %q: %w", dst, err)
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !isLink {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %q: %w", dst, err)
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	ts := []unix.Timespec{st.Atim, st.Mtim}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times of %q: %w", dst, err)
	}
	return nil
}

func copyXattrs(src, dst string) error {
	names, err := listXattrs(src)
	if err != nil {
		if errors.Is(err, unix.ENOTSUP) {
			return nil
		}
		return fmt.Errorf("list xattrs of %q: %w", src, err)
	}
	for _, n := range names {
		v, err := getXattr(src, n)
		if err != nil {
			return fmt.Errorf("read xattr %s of %q: %w", n, src, err)
		}
		if err := unix.Lsetxattr(dst, n, v, 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				continue
			}
			return fmt.Errorf("set xattr %s on %q: %w", n, dst, err)
		}
	}
	return nil
}

func listXattrs(p string) ([]string, error) {
	size, err := unix.Llistxattr(p, nil)
	if err != nil || size == 0 {
		return nil, err
	}
	buf := make([]byte, size)
	for {
		n, err := unix.Llistxattr(p, buf)
		if errors.Is(err, unix.ERANGE) {
			buf = make([]byte, len(buf)*2)
			continue
		}
		if err != nil {
			return nil, err
		}
		var names []string
		for _, s := range strings.Split(string(buf[:n]), "\x00") {
			if s != "" {
				names = append(names, s)
			}
		}
		return names, nil
	}
}

func getXattr(p, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(p, name, buf)
		if errors.Is(err, unix.ERANGE) {
			size, err := unix.Lgetxattr(p, name, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, size+1)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}
