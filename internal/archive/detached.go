package archive

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// ErrNeedsLowers says a layer applied with ApplyDetached needs its lower
// layers to be applied (a hardlink to a file of a lower layer, or a
// replacement below a directory the layer creates implicitly): apply it
// again with Apply once they are in place.
var ErrNeedsLowers = errors.New("the layer needs its lower layers in place")

// implicitDir is a directory a detached apply created without an entry of
// its own (the parent of entries), at its last creation.
type implicitDir struct {
	rel string
	seq int
	// inImplicit: its parent was itself an implicit directory with no
	// entry yet, so in a sequential apply it inherited what the parent
	// copied up from a lower layer (setgid and group).
	inImplicit bool
	// setgid and gid are what it got at creation here.
	setgid bool
	gid    uint32
}

// Detached is what a layer applied by ApplyDetached still needs from its
// lower layers: the directories it created implicitly.
type Detached struct {
	pending []implicitDir          // still implicit at the end, in creation order
	hist    map[string]implicitDir // every implicit directory, at its last creation
}

// ApplyDetached is Apply, with WhiteoutOverlay, of a layer that is not the
// first into an empty upper directory root before its lower layers are in
// place (to extract the layers of an image in parallel). Every guarantee of
// Apply holds. What needs the lower layers is left to Detached.Fix, to be
// called once they are: the directories the layer creates implicitly take
// the owner, mode and times of the lower directory they hide, as Apply with
// ApplyOptions.Parents gives them. A layer that needs more (a hardlink to a
// file of a lower layer, or anything removed or replaced while it has
// implicit directories) fails with ErrNeedsLowers: remove what it made and
// apply it again with Apply once the lower layers are in place. charge, if
// not nil, is ApplyOptions.Charge.
func ApplyDetached(ctx context.Context, root string, r io.Reader, charge Charge) (int64, *Detached, error) {
	cr := &countingReader{r: r}
	rootf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("open apply root: %w", err)
	}
	defer rootf.Close()
	a := newApplier(ctx, rootf, ApplyOptions{Whiteouts: WhiteoutOverlay, Charge: charge})
	a.detached = true
	a.implicit = map[string]*implicitDir{}
	d := &Detached{hist: map[string]implicitDir{}}
	a.hist = d.hist
	defer a.closeParent()
	if err := a.run(cr); err != nil {
		return cr.n, nil, err
	}
	if a.removed && len(d.hist) > 0 {
		return cr.n, nil, fmt.Errorf("an entry was removed or replaced in a layer with implicit directories: %w", ErrNeedsLowers)
	}
	for _, im := range a.implicit {
		d.pending = append(d.pending, *im)
	}
	sort.Slice(d.pending, func(i, j int) bool { return d.pending[i].seq < d.pending[j].seq })
	return cr.n, d, nil
}

// noteImplicit records the directory rel (in parentRel) that mkdirParents
// just created in the directory pfd.
func (a *applier) noteImplicit(pfd int, base, rel, parentRel string) {
	_, in := a.implicit[parentRel]
	a.seq++
	im := implicitDir{rel: rel, seq: a.seq, inImplicit: in}
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		im.setgid, im.gid = st.Mode&unix.S_ISGID != 0, st.Gid
	}
	a.implicit[rel] = &im
	a.hist[rel] = im
}

// Fix gives every directory the layer in root created implicitly what Apply
// with ApplyOptions.Parents set to parents (the lower directories, topmost
// first) would have given it.
func (d *Detached) Fix(root string, parents []string) error {
	rootf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open layer root: %w", err)
	}
	defer rootf.Close()
	for _, im := range d.pending {
		if err := d.fixOne(rootf, im, parents); err != nil {
			return fmt.Errorf("implicit directory %q: %w", im.rel, err)
		}
	}
	return nil
}

func (d *Detached) fixOne(root *os.File, im implicitDir, parents []string) error {
	st, fromLower := lowerDir(parents, im.rel)
	setgid, gid := false, uint32(0)
	if !fromLower {
		if !im.inImplicit {
			return nil // created as a sequential apply creates it
		}
		setgid, gid = d.sequentialGroup(path.Dir(im.rel), parents)
		if setgid == im.setgid && (!setgid || gid == im.gid) {
			return nil
		}
	}
	parent, err := pathrs.OpenatInRoot(root, path.Dir(im.rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	fd, err := unix.Openat(int(parent.Fd()), path.Base(im.rel), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	parent.Close()
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if fromLower {
		if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
			return fmt.Errorf("copy up owner: %w", err)
		}
		if err := unix.Fchmod(fd, st.Mode&0o7777); err != nil {
			return fmt.Errorf("copy up mode: %w", err)
		}
		if err := futimes(fd, time.Unix(st.Atim.Unix()), time.Unix(st.Mtim.Unix())); err != nil {
			return fmt.Errorf("copy up times: %w", err)
		}
		return nil
	}
	// Its parent, copied up from a lower directory, was setgid (or was
	// not) when a sequential apply created it: it inherited that.
	var cur unix.Stat_t
	if err := unix.Fstat(fd, &cur); err != nil {
		return err
	}
	if setgid {
		if err := unix.Fchown(fd, -1, int(gid)); err != nil {
			return fmt.Errorf("inherit group: %w", err)
		}
		return unix.Fchmod(fd, cur.Mode&0o7777|unix.S_ISGID)
	}
	if err := unix.Fchown(fd, -1, os.Getegid()); err != nil {
		return fmt.Errorf("inherit group: %w", err)
	}
	return unix.Fchmod(fd, cur.Mode&0o7777&^unix.S_ISGID)
}

// sequentialGroup says whether the implicit directory rel was setgid, and
// its group, when a sequential apply had just created it.
func (d *Detached) sequentialGroup(rel string, parents []string) (bool, uint32) {
	if st, ok := lowerDir(parents, rel); ok {
		return st.Mode&unix.S_ISGID != 0, st.Gid
	}
	im, ok := d.hist[rel]
	if !ok {
		return false, uint32(os.Getegid())
	}
	if !im.inImplicit {
		return im.setgid, im.gid
	}
	if setgid, gid := d.sequentialGroup(path.Dir(rel), parents); setgid {
		return true, gid
	}
	return false, uint32(os.Getegid())
}
