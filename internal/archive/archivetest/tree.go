package archivetest

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Tree lists every path under dir (relative, "." for dir itself) with its
// type, mode, owner, mtime, xattrs, content, link target or device number,
// then one "links ..." line per set of names that share an inode:
// everything archive.Apply promises. The mtime is left out of overlay
// whiteouts (0:0 character devices, which have none in a tar; atime
// changes as the tree is read) and of the paths for which noTime says so
// (nil: none).
func Tree(t testing.TB, dir string, noTime func(rel string) bool) []string {
	t.Helper()
	inodes := map[uint64][]string{}
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		line := fmt.Sprintf("%s %#o %d:%d", rel, st.Mode, st.Uid, st.Gid)
		whiteout := st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
		if !whiteout && (noTime == nil || !noTime(rel)) {
			line += fmt.Sprintf(" m=%d", st.Mtim.Nano())
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFLNK:
			target, _ := os.Readlink(p)
			line += " ->" + target
		case unix.S_IFREG:
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", b)
			if st.Nlink > 1 {
				inodes[st.Ino] = append(inodes[st.Ino], rel)
			}
		case unix.S_IFCHR, unix.S_IFBLK:
			line += fmt.Sprintf(" dev=%d", st.Rdev)
		}
		if sz, _ := unix.Llistxattr(p, nil); sz > 0 {
			buf := make([]byte, sz)
			sz, _ = unix.Llistxattr(p, buf)
			names := strings.Split(strings.TrimRight(string(buf[:sz]), "\x00"), "\x00")
			sort.Strings(names)
			for _, n := range names {
				v := make([]byte, 256)
				vn, _ := unix.Lgetxattr(p, n, v)
				line += fmt.Sprintf(" %s=%q", n, v[:max(vn, 0)])
			}
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, names := range inodes {
		sort.Strings(names)
		out = append(out, "links "+strings.Join(names, " "))
	}
	sort.Strings(out)
	return out
}
