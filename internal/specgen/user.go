package specgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strconv"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// RootfsLookup reads files of a container's root filesystem. Paths are
// absolute inside that filesystem ("/etc/passwd"); a missing file is an
// error satisfying errors.Is(err, fs.ErrNotExist). Any other error names
// the file.
type RootfsLookup interface {
	ReadFile(path string) ([]byte, error)
}

// maxRootfsFile is the most DirLookup reads of one file.
const maxRootfsFile = 4 << 20

// DirLookup reads files of a rootfs unpacked in a host directory, which
// the image (and, for exec, the running container) controls. Every path is
// resolved by openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) in one step,
// so a symlink, even one swapped in while ReadFile runs, is followed
// inside the directory and never to a host file. Only a regular file of at
// most maxRootfsFile bytes is read; a fifo or a device node is refused
// before it is opened for reading, so it can neither block the caller nor
// feed it without end.
type DirLookup string

// ReadFile reads the regular file path inside the directory d.
func (d DirLookup) ReadFile(path string) ([]byte, error) {
	// An O_PATH handle: opening it has no effect on a fifo or device.
	h, err := pathrs.OpenInRoot(string(d), path)
	if err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			err = errno
		}
		return nil, fmt.Errorf("open %s in the image: %w", path, err)
	}
	defer h.Close()
	fi, err := h.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s in the image: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s in the image is a %s, not a regular file: %w", path, fileKind(fi.Mode()), errdefs.ErrInvalidArgument)
	}
	// The same inode, now readable.
	f, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("open %s in the image: %w", path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRootfsFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s in the image: %w", path, err)
	}
	if len(b) > maxRootfsFile {
		return nil, fmt.Errorf("%s in the image is larger than %d MiB: %w", path, maxRootfsFile>>20, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// fileKind names the type of a file that is not a regular one.
func fileKind(m fs.FileMode) string {
	switch t := m.Type(); {
	case t&fs.ModeDir != 0:
		return "directory"
	case t&fs.ModeNamedPipe != 0:
		return "fifo"
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeSymlink != 0:
		return "symlink"
	}
	return "special file"
}

// MapLookup is a RootfsLookup over files held in memory, keyed by path.
type MapLookup map[string][]byte

// ReadFile returns the file at path, or an fs.ErrNotExist error.
func (m MapLookup) ReadFile(path string) ([]byte, error) {
	b, ok := m[path]
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
	}
	return b, nil
}

// ExecUser is a resolved process identity.
type ExecUser struct {
	UID, GID       uint32
	AdditionalGids []uint32
	// Home is the user's home directory from /etc/passwd, "/" if unknown.
	Home string
}

type passwdEntry struct {
	name     string
	uid, gid uint32
	home     string
}

type groupEntry struct {
	name    string
	gid     uint32
	members []string
}

// readLines returns the non-comment lines of a colon-separated file split
// into fields; a missing file gives no lines.
func readLines(lookup RootfsLookup, path string) ([][]string, error) {
	if lookup == nil {
		return nil, nil
	}
	b, err := lookup.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s of the image: %w", path, err)
	}
	return out, nil
}

func parseID(s string) (uint32, bool) {
	n, err := strconv.ParseUint(s, 10, 32)
	if err != nil || n > math.MaxInt32 {
		return 0, false
	}
	return uint32(n), true
}

func readPasswd(lookup RootfsLookup) ([]passwdEntry, error) {
	lines, err := readLines(lookup, "/etc/passwd")
	if err != nil {
		return nil, err
	}
	var out []passwdEntry
	for _, f := range lines {
		if len(f) < 4 {
			continue
		}
		uid, ok1 := parseID(f[2])
		gid, ok2 := parseID(f[3])
		if !ok1 || !ok2 {
			continue
		}
		e := passwdEntry{name: f[0], uid: uid, gid: gid}
		if len(f) > 5 {
			e.home = f[5]
		}
		out = append(out, e)
	}
	return out, nil
}

func readGroup(lookup RootfsLookup) ([]groupEntry, error) {
	lines, err := readLines(lookup, "/etc/group")
	if err != nil {
		return nil, err
	}
	var out []groupEntry
	for _, f := range lines {
		if len(f) < 3 {
			continue
		}
		gid, ok := parseID(f[2])
		if !ok {
			continue
		}
		e := groupEntry{name: f[0], gid: gid}
		if len(f) > 3 && f[3] != "" {
			for _, m := range strings.Split(f[3], ",") {
				if m = strings.TrimSpace(m); m != "" {
					e.members = append(e.members, m)
				}
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// ResolveUser resolves a docker-style user string against the image's
// /etc/passwd and /etc/group: "" (root), "name", "uid", "name:group",
// "uid:gid", "name:gid" or "uid:group". A name must exist in the image's
// files (an ErrInvalidArgument error otherwise); a numeric uid need not.
// Without an explicit group the primary group comes from /etc/passwd (0 if
// the uid is not listed). Supplementary groups are those of /etc/group
// that list the user's name as a member.
func ResolveUser(user string, lookup RootfsLookup) (ExecUser, error) {
	userPart, groupPart, hasGroup := strings.Cut(user, ":")
	if hasGroup && groupPart == "" {
		return ExecUser{}, fmt.Errorf("user %q: empty group: %w", user, errdefs.ErrInvalidArgument)
	}
	if userPart == "" {
		if hasGroup {
			return ExecUser{}, fmt.Errorf("user %q: empty user: %w", user, errdefs.ErrInvalidArgument)
		}
		userPart = "0"
	}
	passwd, err := readPasswd(lookup)
	if err != nil {
		return ExecUser{}, fmt.Errorf("user %q: %w", user, err)
	}
	eu := ExecUser{Home: "/"}
	var name string
	if uid, ok := parseID(userPart); ok {
		eu.UID = uid
		for _, p := range passwd {
			if p.uid == uid {
				eu.GID, name = p.gid, p.name
				if p.home != "" {
					eu.Home = p.home
				}
				break
			}
		}
	} else {
		found := false
		for _, p := range passwd {
			if p.name == userPart {
				eu.UID, eu.GID, name, found = p.uid, p.gid, p.name, true
				if p.home != "" {
					eu.Home = p.home
				}
				break
			}
		}
		if !found {
			return ExecUser{}, fmt.Errorf("user %q: no user %q in the image's /etc/passwd: %w", user, userPart, errdefs.ErrInvalidArgument)
		}
	}
	var groups []groupEntry
	if hasGroup || name != "" {
		if groups, err = readGroup(lookup); err != nil {
			return ExecUser{}, fmt.Errorf("user %q: %w", user, err)
		}
	}
	if hasGroup {
		if gid, ok := parseID(groupPart); ok {
			eu.GID = gid
		} else {
			found := false
			for _, g := range groups {
				if g.name == groupPart {
					eu.GID, found = g.gid, true
					break
				}
			}
			if !found {
				return ExecUser{}, fmt.Errorf("user %q: no group %q in the image's /etc/group: %w", user, groupPart, errdefs.ErrInvalidArgument)
			}
		}
	}
	if name != "" {
		for _, g := range groups {
			if g.gid == eu.GID {
				continue
			}
			for _, m := range g.members {
				if m == name && !containsID(eu.AdditionalGids, g.gid) {
					eu.AdditionalGids = append(eu.AdditionalGids, g.gid)
				}
			}
		}
	}
	return eu, nil
}

func containsID(ids []uint32, id uint32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}
