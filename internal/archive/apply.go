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
	"unsafe"

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
	// directory it will hide instead of root:root 0755 (looked up in each
	// lower without following symlinks: a symlink there is no directory).
	// A lower entry counts only where the lowers merged show it: a whiteout,
	// a non-directory or an opaque directory in a higher lower hides what
	// the lowers below have there.
	Parents []string
	// Charge, when set, is told of the file data the apply writes, before
	// any of it is written.
	Charge Charge
}

// Charge is told of n bytes of file data an apply is about to write: the
// size of every regular file (the logical size of a sparse one, whose holes
// the tar stream does not hold and which is written out in full), and of
// every file copied up from a lower layer for a hardlink (which the tar
// stream does not hold at all). An error ends the apply before anything of
// that file is written.
type Charge func(n int64) error

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
// is resolved without following any symlink. A parent that exists but does
// not resolve to a directory inside root (a symlink to a path root lacks)
// is an error; it is never replaced, nor changed through.
//
// The resolved parent directory of an entry is kept open for the next
// entries of the same directory until anything is removed or replaced; a
// regular file is created exclusively with its mode and gets its owner,
// mode, xattrs and times through the open file (owner and mode only when
// creation did not already give them).
//
// Tar semantics: a later entry replaces an earlier one of the same name
// (a directory stays and takes the new metadata if both are directories,
// anything else is removed first, a directory with its contents). Owners
// (lchown), modes with setuid/setgid/sticky bits, xattrs (PAX
// SCHILY.xattr.*, except trusted.overlay.* which the layer may not set),
// times (directories' after their contents), device nodes, fifos, symlinks
// and hardlinks are kept. Sparse files (GNU and PAX sparse formats) are
// written out in full.
//
// Whiteouts hide only what the lower layers have (the image-spec: "Whiteout
// files MUST only apply to resources in lower/parent layers"), whatever the
// order of the entries: a whiteout of a path where the layer has an entry
// of its own, or entries below it, leaves them and hides only the lower
// layers' (what else the directory held in WhiteoutRemove, an opaque
// directory in WhiteoutOverlay). In WhiteoutOverlay the explicit whiteouts
// are therefore written after the layer's other entries; one below a path
// the layer also whites out is dropped.
func Apply(ctx context.Context, root string, r io.Reader, opts ApplyOptions) (int64, error) {
	cr := &countingReader{r: r}
	rootf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("open apply root: %w", err)
	}
	defer rootf.Close()
	a := newApplier(ctx, rootf, opts)
	defer a.closeParent()
	if err := a.run(cr); err != nil {
		return cr.n, err
	}
	return cr.n, nil
}

func newApplier(ctx context.Context, root *os.File, opts ApplyOptions) *applier {
	return &applier{
		ctx:     ctx,
		root:    root,
		opts:    opts,
		created: map[string]bool{},
		buf:     make([]byte, 128<<10),
		euid:    os.Geteuid(),
		egid:    os.Getegid(),
		umask:   readUmask(),
	}
}

// run applies every entry of the tar stream cr, then the times of
// directories, then reads cr to its end.
func (a *applier) run(cr io.Reader) error {
	tr := tar.NewReader(cr)
	for {
		if err := a.ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("read tar header: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return fmt.Errorf("apply tar entry %q: %w", hdr.Name, err)
		}
	}
	if err := a.overlayWhiteouts(); err != nil {
		return err
	}
	a.closeParent()
	if err := a.finishDirs(); err != nil {
		return err
	}
	// The tar reader stops at the end-of-archive marker; read the padding
	// after it so the caller's digest sees the whole stream.
	if _, err := io.CopyBuffer(io.Discard, cr, a.buf); err != nil {
		return fmt.Errorf("read tar trailer: %w", err)
	}
	return nil
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
	// created holds, in WhiteoutRemove mode, every path this layer made
	// and every directory above one (whiteouts and opaque directories
	// leave them).
	created map[string]bool
	// whiteouts are the explicit whiteouts of a WhiteoutOverlay apply,
	// written after the other entries; copiedUp the files copied up from
	// a lower layer for a hardlink (not the layer's own: a whiteout of one
	// replaces it).
	whiteouts []string
	copiedUp  map[string]bool
	dirTimes  []dirTime
	buf       []byte

	// dir is the parent directory of the last entry, kept open for the
	// next entries of the same directory (tars list a directory's entries
	// together). It is dropped whenever anything is removed or replaced,
	// as a removal may change what a path resolves to.
	dir parentDir
	// euid and egid own what this process creates; umask is the process's
	// (-1 if unknown): together they tell when the owner and mode a file
	// got at creation are already right.
	euid, egid int
	umask      int

	// detached: see ApplyDetached. implicit holds the directories this
	// layer created without an entry of their own, removed says something
	// was removed or replaced.
	detached bool
	implicit map[string]*implicitDir
	hist     map[string]implicitDir
	seq      int
	removed  bool
}

// parentDir is an O_PATH handle of the directory rel, resolved inside root.
type parentDir struct {
	rel   string
	f     *os.File
	fd    int
	stale bool
	// probed: gid and acl are known (probe). gid is the group a file
	// created in the directory gets; acl says a default ACL, not the umask,
	// decides the mode of what is created in it.
	probed, known bool
	gid           int
	acl           bool
}

// readUmask returns the process's umask from /proc/self/status, or -1.
// (umask(2) cannot read it without setting it for every thread.)
func readUmask() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "Umask:"); ok {
			m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return -1
			}
			return int(m)
		}
	}
	return -1
}

// parent returns the directory rel resolved inside root (creating missing
// directories, see mkdirParents), from the cache if it holds rel. The
// handle belongs to the applier: callers must not close it.
func (a *applier) parent(rel string) (*parentDir, error) {
	d := &a.dir
	if d.f != nil && !d.stale && d.rel == rel {
		return d, nil
	}
	a.closeParent()
	f, err := a.mkdirParents(rel)
	if err != nil {
		return nil, err
	}
	*d = parentDir{rel: rel, f: f, fd: int(f.Fd())}
	return d, nil
}

func (a *applier) closeParent() {
	if a.dir.f != nil {
		a.dir.f.Close()
	}
	a.dir = parentDir{}
}

// probe learns the group and the default ACL of d, once.
func (a *applier) probe(d *parentDir) {
	if d.probed {
		return
	}
	d.probed = true
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return
	}
	d.gid = a.egid
	if st.Mode&unix.S_ISGID != 0 {
		d.gid = int(st.Gid)
	}
	_, err := unix.Getxattr("/proc/self/fd/"+strconv.Itoa(d.fd), "system.posix_acl_default", nil)
	switch {
	case err == nil:
		d.acl = true
	case errors.Is(err, unix.ENODATA), errors.Is(err, unix.EOPNOTSUPP):
	default:
		return
	}
	d.known = true
}

// replace removes name (whatever it is, a directory with its contents) from
// the directory pfd so that an entry of the same name can be created.
func (a *applier) replace(pfd int, name string) error {
	a.removedSomething()
	if err := removeAllAt(pfd, name); err != nil {
		return fmt.Errorf("replace existing entry: %w", err)
	}
	return nil
}

// removedSomething drops the cached parent (the handle stays open for the
// current entry) after a removal.
func (a *applier) removedSomething() {
	a.dir.stale = true
	a.removed = true
}

// markCreated records, in WhiteoutRemove mode, that the layer made rel,
// and so needs every directory above it.
func (a *applier) markCreated(rel string) {
	if a.opts.Whiteouts != WhiteoutRemove {
		return
	}
	for ; rel != "." && !a.created[rel]; rel = path.Dir(rel) {
		a.created[rel] = true
	}
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
		if a.opts.Whiteouts == WhiteoutOverlay {
			a.whiteouts = append(a.whiteouts, path.Join(parentRel, name))
			return nil
		}
		return a.whiteout(parentRel, name)
	}
	if rel == "." && hdr.Typeflag != tar.TypeDir {
		return fmt.Errorf("the root can only be a directory, not type %q: %w", hdr.Typeflag, errdefs.ErrInvalidArgument)
	}
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		slog.DebugContext(a.ctx, "skip tar entry of unsupported type", "name", hdr.Name, "type", string(hdr.Typeflag))
		return nil
	}
	d, err := a.parent(parentRel)
	if err != nil {
		return err
	}
	pfd := d.fd
	if hdr.Typeflag == tar.TypeLink {
		return a.hardlink(hdr, rel, pfd, base)
	}
	a.markCreated(rel)
	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse: // the tar reader fills a sparse file's holes
		return a.writeFile(d, base, hdr, r, mode)
	case tar.TypeSymlink:
		err := a.create(pfd, base, func() error { return unix.Symlinkat(hdr.Linkname, pfd, base) })
		if err != nil {
			return fmt.Errorf("create symlink to %q: %w", hdr.Linkname, err)
		}
		a.probe(d)
		if !d.known || hdr.Uid != a.euid || hdr.Gid != d.gid {
			if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				return fmt.Errorf("chown to %d:%d: %w", hdr.Uid, hdr.Gid, err)
			}
		}
		if err := a.setXattrs(hdr, func(name string, v []byte) error { return unix.Lsetxattr(procPath(pfd, base), name, v, 0) }); err != nil {
			return err
		}
		return setTimes(pfd, base, hdr.AccessTime, hdr.ModTime)
	case tar.TypeDir:
		if err := a.mkdir(pfd, base); err != nil {
			return err
		}
		// The directory's owner, mode or ACL may change below: what a
		// file created in it gets too.
		a.dir.probed, a.dir.known = false, false
		if a.detached {
			delete(a.implicit, rel)
		}
		if err := a.setMeta(pfd, base, hdr, mode); err != nil {
			return err
		}
		a.dirTimes = append(a.dirTimes, dirTime{rel: rel, atime: hdr.AccessTime, mtime: hdr.ModTime})
		return nil
	default: // tar.TypeChar, tar.TypeBlock, tar.TypeFifo
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		err := a.create(pfd, base, func() error { return unix.Mknodat(pfd, base, typ|0o600, int(dev)) })
		if err != nil {
			return fmt.Errorf("create device node %d:%d: %w", hdr.Devmajor, hdr.Devminor, err)
		}
		if err := a.setMeta(pfd, base, hdr, mode); err != nil {
			return err
		}
		return setTimes(pfd, base, hdr.AccessTime, hdr.ModTime)
	}
}

// create runs mk, which creates base in pfd exclusively; if base exists,
// it is removed (tar replace semantics) and mk runs again.
func (a *applier) create(pfd int, base string, mk func() error) error {
	err := mk()
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := a.replace(pfd, base); err != nil {
		return err
	}
	return mk()
}

// mkdir creates the directory base in pfd, or keeps it if it is one, or
// replaces what else is there.
func (a *applier) mkdir(pfd int, base string) error {
	err := unix.Mkdirat(pfd, base, 0o700)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat existing entry: %w", err)
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			return nil
		}
		if err := a.replace(pfd, base); err != nil {
			return err
		}
		err = unix.Mkdirat(pfd, base, 0o700)
	}
	if err != nil {
		return fmt.Errorf("create directory: %w", err)
	}
	return nil
}

// writeFile charges the entry's size, then creates the regular file base in
// d with the entry's data and metadata, all through the open file: owner
// (unless creation gave the right one), then mode (unless creation gave the
// right one; chown clears setuid/setgid), then xattrs (chown clears
// security.capability), then times (after the data).
func (a *applier) writeFile(d *parentDir, base string, hdr *tar.Header, r io.Reader, mode uint32) error {
	if err := a.charge(hdr.Size); err != nil {
		return fmt.Errorf("file of %d bytes: %w", hdr.Size, err)
	}
	perm := mode & 0o777
	var fd int
	err := a.create(d.fd, base, func() (err error) {
		fd, err = unix.Openat(d.fd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return err
	})
	if err != nil {
		return fmt.Errorf("create file: %w", err)
	}
	err = a.fillFile(fd, d, hdr, r, mode, perm)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = fmt.Errorf("write file: %w", cerr)
	}
	return err
}

// charge tells ApplyOptions.Charge of n bytes of file data about to be
// written.
func (a *applier) charge(n int64) error {
	if a.opts.Charge == nil || n == 0 {
		return nil
	}
	return a.opts.Charge(n)
}

func (a *applier) fillFile(fd int, d *parentDir, hdr *tar.Header, r io.Reader, mode, perm uint32) error {
	for left := hdr.Size; left > 0; {
		n := int(min(left, int64(len(a.buf))))
		if _, err := io.ReadFull(r, a.buf[:n]); err != nil {
			return fmt.Errorf("read file data: %w", err)
		}
		if err := writeAll(fd, a.buf[:n]); err != nil {
			return fmt.Errorf("write file: %w", err)
		}
		left -= int64(n)
	}
	a.probe(d)
	chowned := !d.known || hdr.Uid != a.euid || hdr.Gid != d.gid
	if chowned {
		if err := unix.Fchown(fd, hdr.Uid, hdr.Gid); err != nil {
			return fmt.Errorf("chown to %d:%d: %w", hdr.Uid, hdr.Gid, err)
		}
	}
	if !d.known || d.acl || a.umask < 0 || mode != perm&^uint32(a.umask) {
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("chmod to %#o: %w", mode, err)
		}
	}
	if err := a.setXattrs(hdr, func(name string, v []byte) error { return unix.Fsetxattr(fd, name, v, 0) }); err != nil {
		return err
	}
	if err := futimes(fd, hdr.AccessTime, hdr.ModTime); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// setMeta sets owner, then mode (chown clears setuid/setgid), then xattrs
// (chown clears security.capability) of the entry base in pfd, which is
// not a symlink.
func (a *applier) setMeta(pfd int, base string, hdr *tar.Header, mode uint32) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown to %d:%d: %w", hdr.Uid, hdr.Gid, err)
	}
	// The entry was just created (or checked to be a directory) by us.
	if err := unix.Fchmodat(pfd, base, mode, 0); err != nil {
		return fmt.Errorf("chmod to %#o: %w", mode, err)
	}
	return a.setXattrs(hdr, func(name string, v []byte) error { return unix.Lsetxattr(procPath(pfd, base), name, v, 0) })
}

// setXattrs sets the entry's SCHILY.xattr.* records with set, except
// trusted.overlay.* (the layer may not set them) and user.* on symlinks
// (the kernel refuses them).
func (a *applier) setXattrs(hdr *tar.Header, set func(name string, v []byte) error) error {
	isLink := hdr.Typeflag == tar.TypeSymlink
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
			continue
		}
		if err := set(name, []byte(v)); err != nil {
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

// futimes is futimens(3): utimensat on the open file fd itself.
func futimes(fd int, atime, mtime time.Time) error {
	if atime.IsZero() {
		atime = mtime
	}
	ts := [2]unix.Timespec{timespec(atime), timespec(mtime)}
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
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
			// EEXIST: the name is there but does not resolve to a directory
			// inside root (a dangling symlink, or one to a missing path):
			// it is not ours to change; opening it again fails below.
			err = unix.Mkdirat(int(cur.Fd()), part, 0o755)
			if err == nil {
				if a.detached {
					a.noteImplicit(int(cur.Fd()), part, prefix, path.Dir(prefix))
				}
				err = a.copyUpDirMeta(int(cur.Fd()), part, prefix)
			} else if errors.Is(err, unix.EEXIST) {
				err = nil
			} else {
				err = fmt.Errorf("create parent directory %q: %w", prefix, err)
			}
			if err != nil {
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
	st, ok := lowerDir(a.opts.Parents, rel)
	if !ok {
		return nil
	}
	if err := unix.Fchownat(pfd, base, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("copy up owner of %q: %w", rel, err)
	}
	// base is the directory mkdirat just made: not a symlink.
	if err := unix.Fchmodat(pfd, base, st.Mode&0o7777, 0); err != nil {
		return fmt.Errorf("copy up mode of %q: %w", rel, err)
	}
	a.dirTimes = append(a.dirTimes, dirTime{rel: rel, atime: time.Unix(st.Atim.Unix()), mtime: time.Unix(st.Mtim.Unix())})
	return nil
}

// lowerDir returns the attributes of the directory rel of the lower
// directories (see lowerEntry), if they show a directory there.
func lowerDir(lowers []string, rel string) (unix.Stat_t, bool) {
	dir, st, err := lowerEntry(lowers, rel)
	if err != nil {
		return unix.Stat_t{}, false
	}
	dir.Close()
	return st, st.Mode&unix.S_IFMT == unix.S_IFDIR
}

// lowerEntry looks rel up in the lower directories (topmost first) as
// overlayfs merges them, following no symlink: the topmost lower with an
// entry at rel has it, unless a higher lower hides it with a whiteout (a
// 0:0 character device) or a non-directory at rel or above it, or with an
// opaque directory above it (which hides what the lowers below have under
// it). It returns an O_PATH handle of rel's directory in that lower, for
// the caller to close, and rel's attributes there; or ENOENT.
func lowerEntry(lowers []string, rel string) (*os.File, unix.Stat_t, error) {
	parts := strings.Split(rel, "/")
	for _, lower := range lowers {
		dir, err := os.OpenFile(lower, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, unix.Stat_t{}, fmt.Errorf("open lower directory: %w", err)
		}
		dir, st, hidden, err := lookupLower(dir, parts)
		if err != nil || dir != nil {
			return dir, st, err
		}
		if hidden {
			break
		}
	}
	return nil, unix.Stat_t{}, unix.ENOENT
}

// lookupLower walks the path parts down from dir, one lower directory
// (whose handle it takes over). It returns the handle of the last part's
// directory and its attributes if the lower has it; otherwise hidden says
// whether the lower hides it in the lowers below.
func lookupLower(dir *os.File, parts []string) (_ *os.File, _ unix.Stat_t, hidden bool, _ error) {
	opaque := false
	for i, part := range parts {
		var st unix.Stat_t
		err := unix.Fstatat(int(dir.Fd()), part, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == nil && i == len(parts)-1 && !isWhiteout(st):
			return dir, st, false, nil
		case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
			var next int
			next, err = unix.Openat(int(dir.Fd()), part, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			dir.Close()
			if err != nil {
				return nil, st, false, err
			}
			dir = os.NewFile(uintptr(next), part)
			opaque = opaque || isOpaque(next)
			continue
		}
		dir.Close()
		if errors.Is(err, unix.ENOENT) {
			return nil, st, opaque, nil
		}
		// A whiteout, or a file or symlink above the last part, hides it.
		return nil, st, err == nil, err
	}
	dir.Close()
	return nil, unix.Stat_t{}, false, unix.ENOENT // no parts
}

// isWhiteout says whether st is an overlay whiteout: a 0:0 character device.
func isWhiteout(st unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// isOpaque says whether the directory fd (O_PATH) is an opaque overlay
// directory.
func isOpaque(fd int) bool {
	buf := make([]byte, 1)
	n, err := unix.Getxattr("/proc/self/fd/"+strconv.Itoa(fd), overlayOpaque, buf)
	return err == nil && n == 1 && buf[0] == 'y'
}

// hardlink links base in pfd to the entry hdr.Linkname, which must lie inside
// root and is resolved without following symlinks.
func (a *applier) hardlink(hdr *tar.Header, rel string, pfd int, base string) error {
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
	if errors.Is(err, unix.ENOENT) && a.detached {
		return fmt.Errorf("hardlink target %q: its directory is not in this layer: %w", hdr.Linkname, ErrNeedsLowers)
	}
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
	if errors.Is(err, unix.ENOENT) && a.detached {
		return fmt.Errorf("hardlink target %q: not in this layer: %w", hdr.Linkname, ErrNeedsLowers)
	}
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
	err = unix.Linkat(tfd, tbase, pfd, base, 0)
	if errors.Is(err, unix.EEXIST) {
		var st unix.Stat_t
		if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("stat existing entry: %w", err)
		}
		if st.Dev == tst.Dev && st.Ino == tst.Ino {
			return nil
		}
		if err := a.replace(pfd, base); err != nil {
			return err
		}
		err = unix.Linkat(tfd, tbase, pfd, base, 0)
	}
	if err != nil {
		return fmt.Errorf("hardlink to %q: %w", hdr.Linkname, err)
	}
	a.markCreated(rel)
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

// copyUp copies the regular file rel of the lower directories (see
// lowerEntry) into tbase of tfd (the same path in root), keeping its
// metadata.
func (a *applier) copyUp(rel string, tfd int, tbase string) error {
	ldir, _, err := lowerEntry(a.opts.Parents, rel)
	if err != nil {
		return err
	}
	defer ldir.Close()
	if err := a.copyUpFile(int(ldir.Fd()), tbase, tfd); err != nil {
		return err
	}
	if a.copiedUp == nil {
		a.copiedUp = map[string]bool{}
	}
	a.copiedUp[rel] = true
	return nil
}

// copyUpFile copies the regular file base of the directory lfd into tfd,
// after charging its size.
func (a *applier) copyUpFile(lfd int, base string, tfd int) error {
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
	if err := a.charge(st.Size); err != nil {
		return fmt.Errorf("copy up %q of %d bytes: %w", base, st.Size, err)
	}
	dfd, err := unix.Openat(tfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("copy up %q: %w", base, err)
	}
	dst := os.NewFile(uintptr(dfd), base)
	defer dst.Close()
	// No more than was charged, whatever the file does meanwhile.
	if _, err := io.CopyBuffer(dst, io.LimitReader(src, st.Size), a.buf); err != nil {
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

// whiteout removes name in the directory parentRel (WhiteoutRemove), or,
// if the layer made it or something below it, what else it holds.
func (a *applier) whiteout(parentRel, name string) error {
	parent, err := pathrs.OpenatInRoot(a.root, parentRel)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			return nil // nothing below to hide
		}
		return fmt.Errorf("open whiteout directory %q: %w", parentRel, err)
	}
	defer parent.Close()
	rel := path.Join(parentRel, name)
	if a.created[rel] {
		fd, err := unix.Openat(int(parent.Fd()), name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ENOENT) {
			return nil // the layer's own entry, which replaced the lower one
		}
		if err != nil {
			return fmt.Errorf("whiteout %q: %w", name, err)
		}
		defer unix.Close(fd)
		a.removedSomething()
		return a.removeLower(fd, rel)
	}
	a.removedSomething()
	if err := removeAllAt(int(parent.Fd()), name); err != nil {
		return fmt.Errorf("whiteout %q: %w", name, err)
	}
	return nil
}

// overlayWhiteouts writes the explicit whiteouts of a WhiteoutOverlay
// apply once the layer's other entries are in place, so that they hide
// only what the lower layers have: where the layer has nothing (or only a
// file it copied up for a hardlink), an overlay whiteout; where it has a
// directory, that directory made opaque (the lower one's entries are
// hidden, the layer's stay); where it has another entry, nothing (that
// entry hides the lower one already). A whiteout below another whiteout
// of the layer is dropped: the outer one hides the lower entries there.
func (a *applier) overlayWhiteouts() error {
	if len(a.whiteouts) == 0 {
		return nil
	}
	out := make(map[string]bool, len(a.whiteouts))
	for _, rel := range a.whiteouts {
		out[rel] = true
	}
next:
	for _, rel := range a.whiteouts {
		for p := path.Dir(rel); p != "."; p = path.Dir(p) {
			if out[p] {
				continue next
			}
		}
		if err := a.overlayWhiteout(rel); err != nil {
			return fmt.Errorf("apply whiteout of %q: %w", rel, err)
		}
	}
	return nil
}

func (a *applier) overlayWhiteout(rel string) error {
	name := path.Base(rel)
	d, err := a.parent(path.Dir(rel))
	if err != nil {
		return err
	}
	pfd := d.fd
	var st unix.Stat_t
	err = unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return a.opaque(rel)
	case err == nil && !a.copiedUp[rel]:
		return nil
	case err != nil && !errors.Is(err, unix.ENOENT):
		return fmt.Errorf("stat %q: %w", name, err)
	}
	if err := a.create(pfd, name, func() error { return unix.Mknodat(pfd, name, unix.S_IFCHR, 0) }); err != nil {
		return fmt.Errorf("create overlay whiteout %q: %w", name, err)
	}
	a.probe(d)
	if !d.known || a.euid != 0 || d.gid != 0 {
		if err := unix.Fchownat(pfd, name, 0, 0, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("chown overlay whiteout %q: %w", name, err)
		}
	}
	return nil
}

// opaque hides everything of the lower layers in the directory rel.
func (a *applier) opaque(rel string) error {
	if a.opts.Whiteouts == WhiteoutOverlay {
		d, err := a.parent(rel)
		if err != nil {
			return err
		}
		fd, err := unix.Openat(d.fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
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
	a.removedSomething()
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
