package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// WhiteoutMode says how Apply represents OCI whiteouts.
type WhiteoutMode int

const (
	// WhiteoutRemove deletes what a whiteout names and, for an opaque
	// directory, every entry of it that this layer did not create
	// (for a snapshot that holds a full copy, like native's).
	WhiteoutRemove WhiteoutMode = iota
	// WhiteoutOverlay writes overlayfs' own form into an upper directory:
	// a 0:0 character device for ".wh.NAME" and the xattr
	// trusted.overlay.opaque=y on the directory for ".wh..wh..opq".
	WhiteoutOverlay
)

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Whiteouts WhiteoutMode
	// Parents are the lower directories below root, topmost first, when
	// root is an overlay upper directory (WhiteoutOverlay). They are only
	// read: a hardlink to a file of a lower layer copies the file up first,
	// and a directory this layer creates implicitly (an entry whose parent
	// has no entry of its own) takes the owner, mode and times of the lower
	// directory it will hide instead of root:root 0755.
	Parents []string
}

const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
	xattrPrefix    = "SCHILY.xattr."
	overlayOpaque  = "trusted.overlay.opaque"
)

// Apply extracts the tar stream r into the directory root and returns the
// number of bytes read from r (r is read to its end, so a digest taken of r
// covers the whole stream).
//
// Nothing is created or written outside root: names are cleaned and made
// relative to root ("/etc/x" is root/etc/x) and a name that climbs out
// ("../x") is refused with ErrInvalidArgument; every parent directory is
// resolved inside root (openat2 RESOLVE_IN_ROOT via filepath-securejoin), so a
// symlink in the layer (even "/" or "../../..") can never lead a later
// entry out; the last component is never followed (O_NOFOLLOW, *at calls
// with AT_SYMLINK_NOFOLLOW); a hardlink's target must lie inside root and
// is resolved without following any symlink.
//
// Tar semantics: a later entry replaces an earlier one of the same name
// (a directory stays and takes the new metadata if both are directories,
// anything else is removed first, a directory with its contents). Owners
// (lchown), modes with setuid/setgid/sticky bits, xattrs (PAX
// SCHILY.xattr.*, except trusted.overlay.* which the layer may not set),
// times (directories' after their contents), device nodes, fifos, symlinks
// and hardlinks are kept.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (int64, error) {
	cr := &countingReader{r: r}
	rootf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open apply root: %w", err)
	}
	defer rootf.Close()
	a := &applier{
		ctx:     ctx,
		root:    rootf,
		opts:    opts,
		created: map[string]bool{},
		buf:     make([]byte, 128<<10),
	}
	tr := tar.NewReader(cr)
	for {
		if err := ctx.Err(); err != nil {
			return cr.n, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return cr.n, fmt.Errorf("read tar header: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return cr.n, fmt.Errorf("apply tar entry %q: %w", hdr.Name, err)
		}
	}
	if err := a.finishDirs(); err != nil {
		return cr.n, err
	}
	// The tar reader stops at the end-of-archive marker; read the padding
	// after it so the caller's digest sees the whole stream.
	if _, err := io.CopyBuffer(io.Discard, cr, a.buf); err != nil {
		return cr.n, fmt.Errorf("read tar trailer: %w", err)
	}
	return cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type dirTime struct {
	rel          string
	atime, mtime time.Time
}

type applier struct {
	ctx  context.Context
	root *os.File
	opts ApplyOptions
	// created holds every path this layer made (for opaque directories in
	// WhiteoutRemove mode: what the layer made stays).
	created  map[string]bool
	dirTimes []dirTime
	buf      []byte
}

// cleanName makes a tar name relative to root: "." is root itself. A name
// that climbs above root is refused.
func cleanName(name string) (string, error) {
	p := path.Clean(strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("path %q climbs out of the root: %w", name, errdefs.ErrInvalidArgument)
	}
	return p, nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	parentRel, base := path.Dir(rel), path.Base(rel)
	if strings.HasPrefix(base, whiteoutPrefix) {
		if base == whiteoutOpaque {
			return a.opaque(parentRel)
		}
		name := strings.TrimPrefix(base, whiteoutPrefix)
		if name == "" || name == "." || name == ".." {
			return fmt.Errorf("whiteout names %q: %w", name, errdefs.ErrInvalidArgument)
		}
		return a.whiteout(parentRel, name)
	}
	if rel == "." && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("the root can only be a directory, not type %q: %w", hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		slog.DebugContext(a.ctx, "skip tar entry of unsupported type", "name", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	parent, err := a.mkdirParents(parentRel)
	if err != nil {
		return err
	}
	defer parent.Close()
	pfd := int(parent.Fd())

	var st unix.Stat_t
	exists := true
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("stat existing entry: %w", err)
		}
		exists = false
	}
	isDir := exists && st.Mode&unix.S_IFMT == unix.S_IFDIR

	if hdr.Typeflag == tar.TypeLink {
		return a.hardlink(hdr, rel, pfd, base, exists, &st)
	}
	if exists && !(isDir && hdr.Typeflag == tar.TypeDir) {
		if err := removeAllAt(pfd, base); err != nil {
			return fmt.Errorf("replace existing entry: %w", err)
		}
	}
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !isDir {
			if err := unix.Mkdirat(pfd, base, 0o700); err != nil {
				return fmt.Errorf("create directory: %w", err)
			}
		}
	case tar.TypeReg:
		if err := a.writeFile(pfd, base, r); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return fmt.Errorf("create symlink to %q: %w", hdr.Linkname, err)
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, typ|0o600, int(dev)); err != nil {
			return fmt.Errorf("create device node %d:%d: %w", hdr.Devmajor, hdr.Devminor, err)
		}
	}
	a.created[rel] = true
	if err := a.setMeta(pfd, base, hdr, mode); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirTimes = append(a.dirTimes, dirTime{rel: rel, atime: hdr.AccessTime, mtime: hdr.ModTime})
		return nil
	}
	return setTimes(pfd, base, hdr.AccessTime, hdr.ModTime)
}

func (a *applier) writeFile(pfd int, base string, r io.Reader) error {
	fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	if _, err := io.CopyBuffer(f, r, a.buf); err != nil {
		f.Close()
		return fmt.Errorf("write file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write file: %w", err)
	}
	return nil
}

// setMeta sets owner, then mode (chown clears setuid/setgid), then xattrs
// (chown clears security.capability) of the entry base in pfd.
func (a *applier) setMeta(pfd int, base string, hdr *tar.Header, mode uint32) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown to %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	isLink := hdr.Typeflag == tar.TypeSymlink
	if !isLink {
		// The entry was just created by us and is not a symlink.
		if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
			return fmt.Errorf("chmod to %#o: %w", mode, err)
		}
	}
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, xattrPrefix)
		if !ok {
			continue
		}
		if strings.HasPrefix(name, "trusted.overlay.") {
			slog.DebugContext(a.ctx, "drop overlay xattr from layer", "name", hdr.Name, "xattr", name)
			continue
		}
		if isLink && strings.HasPrefix(name, "user.") {
			continue // the kernel refuses user.* xattrs on symlinks
		}
		if err := unix.Lsetxattr(procPath(pfd, base), name, []byte(v), 0); err != nil {
			if errors.Is(err, unix.ENOTSUP) {
				slog.DebugContext(a.ctx, "xattr not supported", "name", hdr.Name, "xattr", name)
				continue
			}
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// procPath names the entry base of the directory fd pfd for path-only
// syscalls (lsetxattr): the fd's magic link is followed, base is not.
func procPath(pfd int, base string) string {
	return "/proc/self/fd/" + strconv.Itoa(pfd) + "/" + base
}

func timespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		return unix.Timespec{Sec: 0, Nsec: unix.UTIME_OMIT}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func setTimes(pfd int, base string, atime, mtime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := []unix.Timespec{timespec(atime), timespec(mtime)}
	if err := unix.UtimesNanoAt(pfd, base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// finishDirs sets directories' times last, as writing into a directory
// changes its mtime.
func (a *applier) finishDirs() error {
	for _, d := range a.dirTimes {
		parent, err := pathrs.OpenatInRoot(a.root, path.Dir(d.rel))
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by a later whiteout
			}
			return fmt.Errorf("set times of directory %q: %w", d.rel, err)
		}
		err = setTimes(int(parent.Fd()), path.Base(d.rel), d.atime, d.mtime)
		parent.Close()
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("directory %q: %w", d.rel, err)
		}
	}
	return nil
}

// mkdirParents returns an O_PATH handle of the directory rel resolved inside
// root, creating missing directories (root:root 0755, or the attributes of
// the lower directory they will hide, see ApplyOptions.Parents).
func (a *applier) mkdirParents(rel string) (*os.File, error) {
	h, err := pathrs.OpenatInRoot(a.root, rel)
	if err == nil {
		return h, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open parent directory %q: %w", rel, err)
	}
	parts := strings.Split(rel, "/")
	cur, err := pathrs.OpenatInRoot(a.root, ".")
	if err != nil {
		return nil, err
	}
	for i, part := range parts {
		prefix := strings.Join(parts[:i+1], "/")
		next, err := pathrs.OpenatInRoot(a.root, prefix)
		if errors.Is(err, os.ErrNotExist) {
			if err := unix.Mkdirat(int(cur.Fd()), part, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
				cur.Close()
				return nil, fmt.Errorf("create parent directory %q: %w", prefix, err)
			}
			a.created[prefix] = true
			if err := a.copyUpDirMeta(int(cur.Fd()), part, prefix); err != nil {
				cur.Close()
				return nil, err
			}
			next, err = pathrs.OpenatInRoot(a.root, prefix)
		}
		cur.Close()
		if err != nil {
			return nil, fmt.Errorf("open parent directory %q: %w", prefix, err)
		}
		cur = next
	}
	return cur, nil
}

// copyUpDirMeta gives the directory base in pfd, just created for rel, the
// owner, mode and times of the topmost lower directory rel.
func (a *applier) copyUpDirMeta(pfd int, base, rel string) error {
	for _, lower := range a.opts.Parents {
		var st unix.Stat_t
		if err := unix.Lstat(path.Join(lower, rel), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if err := unix.Fchownat(pfd, base, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("copy up owner of %q: %w", rel, err)
		}
		if err := unix.Fchmodat(pfd, base, st.Mode&0o7777, 0); err != nil {
			return fmt.Errorf("copy up mode of %q: %w", rel, err)
		}
		a.dirTimes = append(a.dirTimes, dirTime{rel: rel, atime: time.Unix(st.Atim.Unix()), mtime: time.Unix(st.Mtim.Unix())})
		return nil
	}
	return nil
}

// hardlink links base in pfd to the entry hdr.Linkname, which must lie inside
// root and is resolved without following symlinks.
func (a *applier) hardlink(hdr *tar.Header, rel string, pfd int, base string, exists bool, st *unix.Stat_t) error {
	target, err := cleanName(hdr.Linkname)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	if target == "." {
		return fmt.Errorf("hardlink to the root: %w", errdefs.ErrInvalidArgument)
	}
	if target == rel {
		return nil
	}
	tdir, err := openNoSymlinks(a.root, path.Dir(target))
	if errors.Is(err, unix.ENOENT) && len(a.opts.Parents) > 0 {
		// The target's directory exists only in a lower layer.
		var h *os.File
		if h, err = a.mkdirParents(path.Dir(target)); err == nil {
			h.Close()
			tdir, err = openNoSymlinks(a.root, path.Dir(target))
		}
	}
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	defer tdir.Close()
	tfd, tbase := int(tdir.Fd()), path.Base(target)
	var tst unix.Stat_t
	err = unix.Fstatat(tfd, tbase, &tst, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) && len(a.opts.Parents) > 0 {
		if err = a.copyUp(target, tfd, tbase); err == nil {
			err = unix.Fstatat(tfd, tbase, &tst, unix.AT_SYMLINK_NOFOLLOW)
		}
	}
	if err != nil {
		return fmt.Errorf("hardlink target %q: %w", hdr.Linkname, err)
	}
	if tst.Mode&unix.S_IFMT == unix.S_IFDIR {
		return fmt.Errorf("hardlink target %q is a directory: %w", hdr.Linkname, errdefs.ErrInvalidArgument)
	}
	if exists {
		if st.Dev == tst.Dev && st.Ino == tst.Ino {
			return nil
		}
		if err := removeAllAt(pfd, base); err != nil {
			return fmt.Errorf("replace existing entry: %w", err)
		}
	}
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
	}
	a.created[rel] = true
	return nil
}

// openNoSymlinks opens the directory rel under root as O_PATH, refusing any
// symlink on the way (ELOOP/ENOTDIR).
func openNoSymlinks(root *os.File, rel string) (*os.File, error) {
	fd, err := unix.Openat2(int(root.Fd()), rel, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if errors.Is(err, unix.ENOSYS) {
		return openNoSymlinksWalk(root, rel)
	}
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return nil, fmt.Errorf("path %q goes through a symlink: %w", rel, errdefs.ErrInvalidArgument)
		}
		return nil, err
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// openNoSymlinksWalk is openNoSymlinks for kernels without openat2.
func openNoSymlinksWalk(root *os.File, rel string) (*os.File, error) {
	fd, err := unix.Openat(int(root.Fd()), ".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	for _, part := range strings.Split(rel, "/") {
		if part == "." || part == "" {
			continue
		}
		next, err := unix.Openat(fd, part, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) {
				return nil, fmt.Errorf("path %q goes through a symlink or file: %w", rel, errdefs.ErrInvalidArgument)
			}
			return nil, err
		}
		fd = next
	}
	return os.NewFile(uintptr(fd), rel), nil
}

// copyUp copies the regular file rel from the topmost lower directory that
// has it into tbase of tfd (the same path in root), keeping its metadata.
func (a *applier) copyUp(rel string, tfd int, tbase string) error {
	for _, lower := range a.opts.Parents {
		lroot, err := os.OpenFile(lower, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open lower directory: %w", err)
		}
		ldir, err := openNoSymlinks(lroot, path.Dir(rel))
		lroot.Close()
		if err != nil {
			continue
		}
		err = copyUpFile(int(ldir.Fd()), tbase, tfd, a.buf)
		ldir.Close()
		if errors.Is(err, unix.ENOENT) {
			continue
		}
		return err
	}
	return unix.ENOENT
}

func copyUpFile(lfd int, base string, tfd int, buf []byte) error {
	sfd, err := unix.Openat(lfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ELOOP) {
			return fmt.Errorf("copy up %q: a symlink: %w", base, errdefs.ErrInvalidArgument)
		}
		return err
	}
	src := os.NewFile(uintptr(sfd), base)
	defer src.Close()
	var st unix.Stat_t
	if err := unix.Fstat(sfd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("copy up %q: not a regular file: %w", base, errdefs.ErrInvalidArgument)
	}
	dfd, err := unix.Openat(tfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("copy up %q: %w", base, err)
	}
	dst := os.NewFile(uintptr(dfd), base)
	defer dst.Close()
	if _, err := io.CopyBuffer(dst, src, buf); err != nil {
		return fmt.Errorf("copy up %q: %w", base, err)
	}
	if err := unix.Fchown(dfd, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("copy up %q: %w", base, err)
	}
	if err := unix.Fchmod(dfd, st.Mode&0o7777); err != nil {
		return fmt.Errorf("copy up %q: %w", base, err)
	}
	return unix.UtimesNanoAt(tfd, base, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW)
}

// whiteout hides name in the directory parentRel.
func (a *applier) whiteout(parentRel, name string) error {
	if a.opts.Whiteouts == WhiteoutOverlay {
		parent, err := a.mkdirParents(parentRel)
		if err != nil {
			return err
		}
		defer parent.Close()
		pfd := int(parent.Fd())
		if err := removeAllAt(pfd, name); err != nil {
			return fmt.Errorf("whiteout %q: %w", name, err)
		}
		if err := unix.Mknodat(pfd, name, unix.S_IFCHR, 0); err != nil {
			return fmt.Errorf("create overlay whiteout %q: %w", name, err)
		}
		if err := unix.Fchownat(pfd, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown overlay whiteout %q: %w", name, err)
		}
		return nil
	}
	parent, err := pathrs.OpenatInRoot(a.root, parentRel)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil // nothing below to hide
		}
		return fmt.Errorf("open whiteout directory %q: %w", parentRel, err)
	}
	defer parent.Close()
	if err := removeAllAt(int(parent.Fd()), name); err != nil {
		return fmt.Errorf("whiteout %q: %w", name, err)
	}
	return nil
}

// opaque hides everything of the lower layers in the directory rel.
func (a *applier) opaque(rel string) error {
	if a.opts.Whiteouts == WhiteoutOverlay {
		h, err := a.mkdirParents(rel)
		if err != nil {
			return err
		}
		defer h.Close()
		fd, err := unix.Openat(int(h.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open opaque directory %q: %w", rel, err)
		}
		defer unix.Close(fd)
		if err := unix.Fsetxattr(fd, overlayOpaque, []byte("y"), 0); err != nil {
			return fmt.Errorf("mark directory %q opaque: %w", rel, err)
		}
		return nil
	}
	h, err := pathrs.OpenatInRoot(a.root, rel)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("open opaque directory %q: %w", rel, err)
	}
	defer h.Close()
	return a.removeLower(int(h.Fd()), rel)
}

// removeLower removes every entry of the directory dfd (rel) that this layer
// did not create, recursing into directories it did.
func (a *applier) removeLower(dfd int, rel string) error {
	fd, err := unix.Openat(dfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open opaque directory %q: %w", rel, err)
	}
	d := os.NewFile(uintptr(fd), rel)
	names, err := d.Readdirnames(-1)
	if err != nil {
		d.Close()
		return fmt.Errorf("read opaque directory %q: %w", rel, err)
	}
	defer d.Close()
	for _, n := range names {
		child := path.Join(rel, n)
		if !a.created[child] {
			if err := removeAllAt(fd, n); err != nil {
				return fmt.Errorf("clear opaque directory %q: %w", rel, err)
			}
			continue
		}
		cfd, err := unix.Openat(fd, n, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			continue // not a directory: nothing below it
		}
		err = a.removeLower(cfd, child)
		unix.Close(cfd)
		if err != nil {
			return err
		}
	}
	return nil
}

// removeAllAt removes name in the directory dfd and, if it is a directory,
// everything below it, never following a symlink. A missing name is fine.
func removeAllAt(dfd int, name string) error {
	err := unix.Unlinkat(dfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("remove %q: %w", name, err)
	}
	fd, err := unix.Openat(dfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %q for removal: %w", name, err)
	}
	d := os.NewFile(uintptr(fd), name)
	names, err := d.Readdirnames(-1)
	if err != nil {
		d.Close()
		return fmt.Errorf("read %q for removal: %w", name, err)
	}
	for _, n := range names {
		if err := removeAllAt(fd, n); err != nil {
			d.Close()
			return err
		}
	}
	d.Close()
	if err := unix.Unlinkat(dfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove directory %q: %w", name, err)
	}
	return nil
}
