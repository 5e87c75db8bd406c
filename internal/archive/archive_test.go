package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// entry is one tar entry for buildTar; Typeflag defaults to a regular file.
type entry struct {
	name     string
	typ      byte
	body     string
	link     string
	mode     int64
	uid, gid int
	mtime    time.Time
	major    int64
	minor    int64
	xattrs   map[string]string
}

func buildTar(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:     e.name,
			Typeflag: e.typ,
			Linkname: e.link,
			Mode:     e.mode,
			Uid:      e.uid,
			Gid:      e.gid,
			ModTime:  e.mtime,
			Devmajor: e.major,
			Devminor: e.minor,
			Format:   tar.FormatPAX,
		}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if os.Geteuid() != 0 && e.uid == 0 && e.gid == 0 {
			h.Uid, h.Gid = os.Getuid(), os.Getgid()
		}
		if h.ModTime.IsZero() {
			h.ModTime = time.Unix(1700000000, 0)
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatalf("write header %q: %v", e.name, err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func dir(name string) entry             { return entry{name: name, typ: tar.TypeDir} }
func file(name, body string) entry      { return entry{name: name, body: body} }
func symlink(name, target string) entry { return entry{name: name, typ: tar.TypeSymlink, link: target} }
func hardlink(name, target string) entry {
	return entry{name: name, typ: tar.TypeLink, link: target}
}

// tree lists every path under dir (relative, sorted), with "->target" for
// symlinks and ":content" for regular files.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			rel += "->" + target
		case fi.Mode().IsRegular():
			b, _ := os.ReadFile(p)
			rel += ":" + string(b)
		case fi.IsDir():
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestApplyHostile(t *testing.T) {
	// Each case runs in a fresh <tmp>/root next to <tmp>/sentinel (holding
	// "secret"); whatever Apply returns, nothing outside root may change.
	type tc struct {
		name    string
		entries func(sentinel string) []entry
		wantErr error // nil: any outcome is fine as long as nothing escapes
		check   func(t *testing.T, root string)
	}
	tests := []tc{
		{name: "dotdot file", entries: func(string) []entry { return []entry{file("../sentinel/pwned", "x")} }, wantErr: errdefs.ErrInvalidArgument},
		{name: "deep dotdot", entries: func(string) []entry { return []entry{file("a/../../../sentinel/pwned", "x")} }, wantErr: errdefs.ErrInvalidArgument},
		{name: "dotdot dir", entries: func(string) []entry { return []entry{dir("../sentinel/d")} }, wantErr: errdefs.ErrInvalidArgument},
		{name: "absolute name is made relative", entries: func(s string) []entry { return []entry{file(filepath.Join(s, "pwned"), "x")} },
			check: func(t *testing.T, root string) {
				if _, err := os.Stat(filepath.Join(root, filepath.Dir(root), "sentinel", "pwned")); err != nil {
					t.Errorf("absolute name not extracted inside root: %v", err)
				}
			}},
		{name: "relative symlink out then write through", entries: func(string) []entry {
			return []entry{symlink("evil", "../sentinel"), file("evil/pwned", "x")}
		}},
		{name: "absolute symlink out then write through", entries: func(s string) []entry {
			return []entry{symlink("evil", s), file("evil/pwned", "x")}
		}},
		{name: "symlink to / then write through", entries: func(s string) []entry {
			return []entry{symlink("evil", "/"), file("evil/etc/pwned", "x")}
		}, check: func(t *testing.T, root string) {
			if b, err := os.ReadFile(filepath.Join(root, "etc", "pwned")); err != nil || string(b) != "x" {
				t.Errorf("write through symlink to / should land in root/etc: %q %v", b, err)
			}
		}},
		{name: "dotdot symlink chain", entries: func(string) []entry {
			return []entry{symlink("a", "b"), symlink("b", "../../../.."), file("a/sentinel/pwned", "x"), dir("a/sentinel/d")}
		}},
		{name: "symlink to a file out then overwrite", entries: func(s string) []entry {
			return []entry{symlink("evil", filepath.Join(s, "secret")), file("evil", "overwritten")}
		}, check: func(t *testing.T, root string) {
			fi, err := os.Lstat(filepath.Join(root, "evil"))
			if err != nil || !fi.Mode().IsRegular() {
				t.Errorf("evil should be replaced by a regular file: %v %v", fi, err)
			}
		}},
		{name: "symlink to a dir out then dir entry", entries: func(s string) []entry {
			return []entry{symlink("evil", s), dir("evil"), file("evil/f", "x")}
		}},
		{name: "symlink out then hardlink onto it", entries: func(s string) []entry {
			return []entry{file("f", "x"), symlink("evil", s), hardlink("evil/pwned", "f")}
		}},
		{name: "symlink out then chmod via dir entry", entries: func(s string) []entry {
			return []entry{symlink("evil", "../sentinel"), {name: "evil/", typ: tar.TypeDir, mode: 0o777}}
		}},
		{name: "hardlink dotdot", entries: func(string) []entry { return []entry{hardlink("hl", "../sentinel/secret")} }, wantErr: errdefs.ErrInvalidArgument},
		{name: "hardlink absolute", entries: func(s string) []entry { return []entry{hardlink("hl", filepath.Join(s, "secret"))} }},
		{name: "hardlink through symlink", entries: func(s string) []entry {
			return []entry{symlink("lnk", s), hardlink("hl", "lnk/secret")}
		}, wantErr: errdefs.ErrInvalidArgument},
		{name: "hardlink through relative symlink", entries: func(string) []entry {
			return []entry{symlink("lnk", "../sentinel"), hardlink("hl", "lnk/secret")}
		}, wantErr: errdefs.ErrInvalidArgument},
		{name: "hardlink to root", entries: func(string) []entry { return []entry{hardlink("hl", "/")} }, wantErr: errdefs.ErrInvalidArgument},
		{name: "whiteout dotdot", entries: func(string) []entry { return []entry{file("../.wh.sentinel", "")} }, wantErr: errdefs.ErrInvalidArgument},
		{name: "whiteout of dotdot", entries: func(string) []entry { return []entry{file(".wh..", "")} }, wantErr: errdefs.ErrInvalidArgument},
		{name: "whiteout through symlink", entries: func(string) []entry {
			return []entry{symlink("evil", "../sentinel"), file("evil/.wh.secret", ""), symlink("up", ".."), file("up/.wh.sentinel", "")}
		}},
		{name: "opaque through symlink", entries: func(s string) []entry {
			return []entry{symlink("evil", s), file("evil/.wh..wh..opq", ""), symlink("up", "../sentinel"), file("up/.wh..wh..opq", "")}
		}},
		{name: "whiteout through absolute symlink", entries: func(s string) []entry {
			return []entry{symlink("evil", s), file("evil/.wh.secret", "")}
		}},
	}
	for _, mode := range []WhiteoutMode{WhiteoutRemove, WhiteoutOverlay} {
		for _, tt := range tests {
			t.Run(tt.name+modeName(mode), func(t *testing.T) {
				if mode == WhiteoutOverlay && os.Geteuid() != 0 {
					t.Skip("overlay whiteouts need root")
				}
				base := t.TempDir()
				root := filepath.Join(base, "root")
				sentinel := filepath.Join(base, "sentinel")
				for _, d := range []string{root, sentinel} {
					if err := os.Mkdir(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.WriteFile(filepath.Join(sentinel, "secret"), []byte("s"), 0o600); err != nil {
					t.Fatal(err)
				}
				fi, _ := os.Stat(sentinel)
				wantMode := fi.Mode()
				_, err := Apply(context.Background(), root, bytes.NewReader(buildTar(t, tt.entries(sentinel)...)), ApplyOptions{Whiteouts: mode})
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Errorf("apply: got %v, want %v", err, tt.wantErr)
				}
				if tt.wantErr == nil && tt.check != nil {
					if err != nil {
						t.Fatalf("apply: %v", err)
					}
					tt.check(t, root)
				}
				got := tree(t, base)
				var outside []string
				for _, p := range got {
					if !strings.HasPrefix(p, "root/") && p != "root/" {
						outside = append(outside, p)
					}
				}
				want := []string{"sentinel/", "sentinel/secret:s"}
				if strings.Join(outside, "|") != strings.Join(want, "|") {
					t.Errorf("outside root: got %v, want %v", outside, want)
				}
				if fi, _ := os.Stat(sentinel); fi.Mode() != wantMode {
					t.Errorf("sentinel mode changed to %v", fi.Mode())
				}
				if fi, _ := os.Stat(filepath.Join(sentinel, "secret")); fi.Mode().Perm() != 0o600 {
					t.Errorf("secret mode changed to %v", fi.Mode())
				}
			})
		}
	}
}

func modeName(m WhiteoutMode) string {
	if m == WhiteoutOverlay {
		return "/overlay"
	}
	return "/remove"
}

func apply(t *testing.T, root string, opts ApplyOptions, entries ...entry) {
	t.Helper()
	b := buildTar(t, entries...)
	n, err := Apply(context.Background(), root, bytes.NewReader(b), opts)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if n != int64(len(b)) {
		t.Errorf("apply read %d bytes, the stream has %d", n, len(b))
	}
}

func checkTree(t *testing.T, root string, want ...string) {
	t.Helper()
	got := tree(t, root)
	sort.Strings(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("tree:\n got %q\nwant %q", got, want)
	}
}

func TestApplyTarSemantics(t *testing.T) {
	root := t.TempDir()
	apply(t, root, ApplyOptions{},
		file("dup", "first"), file("dup", "second"),
		file("x", "file"), dir("x"), file("x/y", "in dir"),
		dir("d"), file("d/child", "c"), file("d", "now a file"),
		file("implicit/parents/f", "p"),
		file("/abs/name", "a"), file("./dot/name", "b"),
		file("target", "t"), hardlink("link", "target"), hardlink("link2", "/target"),
		symlink("sym", "target"), symlink("dangling", "/nowhere"), symlink("sym", "dup"),
		file("pre", "old"), symlink("pre", "target"),
	)
	checkTree(t, root,
		"dup:second", "x/", "x/y:in dir", "d:now a file",
		"implicit/", "implicit/parents/", "implicit/parents/f:p",
		"abs/", "abs/name:a", "dot/", "dot/name:b",
		"target:t", "link:t", "link2:t", "sym->dup", "dangling->/nowhere", "pre->target")
	var a, b unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "target"), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(root, "link"), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Nlink != 3 {
		t.Errorf("hardlink: inodes %d/%d, nlink %d (want same inode, 3 links)", a.Ino, b.Ino, a.Nlink)
	}
	fi, err := os.Stat(filepath.Join(root, "implicit"))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("implicit parent: %v %v, want 0755", fi.Mode(), err)
	}
}

func TestApplyModesAndTimes(t *testing.T) {
	root := t.TempDir()
	mt := time.Date(2020, 1, 2, 3, 4, 5, 600000000, time.UTC)
	dt := time.Date(2019, 5, 6, 7, 8, 9, 0, time.UTC)
	lt := time.Date(2018, 1, 1, 0, 0, 0, 0, time.UTC)
	apply(t, root, ApplyOptions{},
		entry{name: "d", typ: tar.TypeDir, mode: 0o750, mtime: dt},
		entry{name: "d/suid", body: "x", mode: 0o4755, mtime: mt},
		entry{name: "d/sgid", typ: tar.TypeDir, mode: 0o2755, mtime: dt},
		entry{name: "sticky", typ: tar.TypeDir, mode: 0o1777, mtime: dt},
		entry{name: "d/ro", body: "x", mode: 0o400, mtime: mt},
		entry{name: "d/lnk", typ: tar.TypeSymlink, link: "suid", mtime: lt},
		// Written after d's entry: d's mtime must still be dt.
		entry{name: "d/late", body: "late", mtime: mt},
		entry{name: "fifo", typ: tar.TypeFifo, mode: 0o640, mtime: mt},
	)
	tests := []struct {
		name  string
		mode  os.FileMode
		mtime time.Time
	}{
		{"d", os.ModeDir | 0o750, dt},
		{"d/suid", os.ModeSetuid | 0o755, mt},
		{"d/sgid", os.ModeDir | os.ModeSetgid | 0o755, dt},
		{"sticky", os.ModeDir | os.ModeSticky | 0o777, dt},
		{"d/ro", 0o400, mt},
		{"d/lnk", os.ModeSymlink | 0o777, lt},
		{"fifo", os.ModeNamedPipe | 0o640, mt},
	}
	for _, tt := range tests {
		fi, err := os.Lstat(filepath.Join(root, tt.name))
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if fi.Mode() != tt.mode {
			t.Errorf("%s: mode %v, want %v", tt.name, fi.Mode(), tt.mode)
		}
		if !fi.ModTime().Equal(tt.mtime) {
			t.Errorf("%s: mtime %v, want %v", tt.name, fi.ModTime().UTC(), tt.mtime)
		}
	}
}

func TestApplyWhiteoutsRemove(t *testing.T) {
	root := t.TempDir()
	apply(t, root, ApplyOptions{},
		file("a", "a"), file("d/x", "x"), file("d/y", "y"),
		file("o/old", "o"), file("o/sub/old2", "o2"), file("o/sub/keep-not", "k"),
		file("p/old", "p"), dir("gone"), file("gone/deep/f", "f"),
	)
	apply(t, root, ApplyOptions{Whiteouts: WhiteoutRemove},
		file(".wh.a", ""), file("d/.wh.x", ""), file(".wh.gone", ""),
		dir("o"), file("o/.wh..wh..opq", ""), file("o/new", "n"),
		// The marker may come after entries of the same layer.
		dir("p"), file("p/new", "n"), dir("p/sub"), file("p/sub/f", "f"), file("p/.wh..wh..opq", ""),
		dir("o/sub"), file("o/sub/new2", "n2"),
		file("nothere/.wh.x", ""), file(".wh.missing", ""),
	)
	checkTree(t, root,
		"d/", "d/y:y",
		"o/", "o/new:n", "o/sub/", "o/sub/new2:n2",
		"p/", "p/new:n", "p/sub/", "p/sub/f:f")
}

func TestApplyWhiteoutsOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay whiteouts (mknod, trusted xattrs) need root")
	}
	upper := t.TempDir()
	apply(t, upper, ApplyOptions{Whiteouts: WhiteoutOverlay},
		file(".wh.a", ""), file("d/.wh.x", ""),
		dir("o"), file("o/.wh..wh..opq", ""), file("o/new", "n"),
		file("q/f", "f"), file("q/.wh..wh..opq", ""),
		entry{name: "bad", body: "b", xattrs: map[string]string{"trusted.overlay.redirect": "/etc", "user.ok": "1"}},
	)
	for _, name := range []string{"a", "d/x"} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(upper, name), &st); err != nil {
			t.Fatalf("whiteout %s: %v", name, err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 || st.Uid != 0 || st.Gid != 0 {
			t.Errorf("whiteout %s: mode %#o rdev %d owner %d:%d, want 0:0 char device owned by root", name, st.Mode, st.Rdev, st.Uid, st.Gid)
		}
	}
	for _, d := range []string{"o", "q"} {
		buf := make([]byte, 8)
		n, err := unix.Lgetxattr(filepath.Join(upper, d), "trusted.overlay.opaque", buf)
		if err != nil || string(buf[:n]) != "y" {
			t.Errorf("opaque %s: %q %v", d, buf[:n], err)
		}
	}
	if _, err := unix.Lgetxattr(filepath.Join(upper, "bad"), "trusted.overlay.redirect", make([]byte, 64)); !errors.Is(err, unix.ENODATA) {
		t.Errorf("trusted.overlay.* xattr from the layer must be dropped, got %v", err)
	}
	if _, err := os.Stat(filepath.Join(upper, "o", "new")); err != nil {
		t.Error(err)
	}
}

func TestApplyOverlayMerged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay mount needs root")
	}
	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "l"), filepath.Join(base, "u"), filepath.Join(base, "w"), filepath.Join(base, "m")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, lower, ApplyOptions{},
		file("a", "a"), file("d/x", "x"), file("d/y", "y"), file("o/old", "o"),
		entry{name: "priv", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000},
		file("priv/f", "f"), file("shared", "s"))
	apply(t, upper, ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: []string{lower}},
		file(".wh.a", ""), file("d/.wh.x", ""), dir("o"), file("o/.wh..wh..opq", ""), file("o/new", "n"),
		// priv has no entry of its own: it keeps the lower's owner and mode.
		file("priv/g", "g"),
		// A hardlink to a file of the lower layer copies it up.
		hardlink("shared-link", "shared"))
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	if err := unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work); err != nil {
		t.Fatal(err)
	}
	checkTree(t, merged, "d/", "d/y:y", "o/", "o/new:n", "priv/", "priv/f:f", "priv/g:g", "shared:s", "shared-link:s")
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(upper, "priv"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o700 || st.Uid != 1000 || st.Gid != 1000 {
		t.Errorf("implicit upper dir priv: mode %#o owner %d:%d, want 0700 1000:1000", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if err := unix.Unmount(merged, 0); err != nil {
		t.Fatal(err)
	}
}

func TestApplyRootOnly(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("devices, foreign owners and trusted xattrs need root")
	}
	root := t.TempDir()
	apply(t, root, ApplyOptions{},
		entry{name: "null", typ: tar.TypeChar, major: 1, minor: 3, mode: 0o666},
		entry{name: "loop", typ: tar.TypeBlock, major: 7, minor: 0, mode: 0o660, gid: 6},
		entry{name: "owned", body: "o", uid: 1234, gid: 5678, mode: 0o6750},
		entry{name: "lowned", typ: tar.TypeSymlink, link: "owned", uid: 4321, gid: 8765},
		entry{name: "x", body: "x", xattrs: map[string]string{"user.k": "v", "trusted.t": "tv", "security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}, uid: 7},
		entry{name: "xd", typ: tar.TypeDir, xattrs: map[string]string{"trusted.d": "dv"}},
	)
	devs := []struct {
		name         string
		typ          uint32
		major, minor uint32
	}{{"null", unix.S_IFCHR, 1, 3}, {"loop", unix.S_IFBLK, 7, 0}}
	for _, d := range devs {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, d.name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&unix.S_IFMT != d.typ || unix.Major(st.Rdev) != d.major || unix.Minor(st.Rdev) != d.minor {
			t.Errorf("%s: mode %#o dev %d:%d", d.name, st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
		}
	}
	owners := []struct {
		name     string
		uid, gid uint32
		perm     uint32
	}{{"owned", 1234, 5678, 0o6750}, {"lowned", 4321, 8765, 0o777}, {"loop", 0, 6, 0o660}}
	for _, o := range owners {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, o.name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != o.uid || st.Gid != o.gid || st.Mode&0o7777 != o.perm {
			t.Errorf("%s: %d:%d %#o, want %d:%d %#o", o.name, st.Uid, st.Gid, st.Mode&0o7777, o.uid, o.gid, o.perm)
		}
	}
	xattrs := []struct{ path, name, want string }{
		{"x", "user.k", "v"}, {"x", "trusted.t", "tv"}, {"xd", "trusted.d", "dv"},
	}
	for _, x := range xattrs {
		buf := make([]byte, 64)
		n, err := unix.Lgetxattr(filepath.Join(root, x.path), x.name, buf)
		if err != nil || string(buf[:n]) != x.want {
			t.Errorf("%s %s: %q %v, want %q", x.path, x.name, buf[:max(n, 0)], err, x.want)
		}
	}
	// security.capability survives the chown that comes before it.
	if _, err := unix.Lgetxattr(filepath.Join(root, "x"), "security.capability", make([]byte, 64)); err != nil {
		t.Errorf("security.capability: %v", err)
	}
}

func TestApplyCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Apply(ctx, t.TempDir(), bytes.NewReader(buildTar(t, file("f", "x"))), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("got %v, want context.Canceled", err)
	}
}

func TestDecompress(t *testing.T) {
	data := bytes.Repeat([]byte("gantry layer "), 1000)
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(data)
	gw.Close()
	zw, err := zstd.NewWriter(&zs)
	if err != nil {
		t.Fatal(err)
	}
	zw.Write(data)
	zw.Close()
	tests := []struct {
		name    string
		in      []byte
		want    []byte
		wantErr error
	}{
		{"plain", data, data, nil},
		{"gzip", gz.Bytes(), data, nil},
		{"zstd", zs.Bytes(), data, nil},
		{"empty", nil, nil, nil},
		{"short", []byte{0x1f}, []byte{0x1f}, nil},
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0, 1, 2}, nil, errdefs.ErrNotImplemented},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc, err := Decompress(bytes.NewReader(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer rc.Close()
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("got %d bytes, want %d", len(got), len(tt.want))
			}
		})
	}
	// A corrupt gzip stream fails when read.
	bad := append([]byte(nil), gz.Bytes()...)
	bad[len(bad)-5] ^= 0xff
	rc, err := Decompress(bytes.NewReader(bad))
	if err == nil {
		_, err = io.ReadAll(rc)
	}
	if err == nil {
		t.Error("corrupt gzip: no error")
	}
}

// Apply keeps the parent directory of an entry open for the next entries of
// the same directory: a removal must drop it, or a later entry would land
// in a directory its name no longer resolves to.
func TestApplyCachedParentAfterRemoval(t *testing.T) {
	// "l" resolves to the root; the whiteout removes the symlink, so the
	// next "l/x" goes into a new directory l, not into the root.
	root := t.TempDir()
	apply(t, root, ApplyOptions{Whiteouts: WhiteoutRemove},
		symlink("l", "."), file("l/a", "1"), file("l/.wh.l", ""), file("l/x", "2"))
	checkTree(t, root, "a:1", "l/", "l/x:2")

	// "l/l" replaces the symlink l (reached through itself) with a file:
	// "l/z" no longer has a directory to go into.
	root = t.TempDir()
	_, err := Apply(context.Background(), root, bytes.NewReader(buildTar(t,
		symlink("l", "."), file("l/l", "x"), file("l/z", "z"))), ApplyOptions{})
	if err == nil {
		t.Error("apply through a symlink replaced by a file: no error")
	}
	if _, err := os.Lstat(filepath.Join(root, "z")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("z was written through the replaced symlink: %v", err)
	}

	// A directory replaced by a file, then by a directory again, with
	// entries below it each time.
	root = t.TempDir()
	apply(t, root, ApplyOptions{},
		dir("r"), file("r/a", "1"), file("r", "file"), dir("r"), file("r/b", "2"),
		file("s/a", "1"), symlink("s", "r"), file("s/c", "3"))
	checkTree(t, root, "r/", "r/b:2", "r/c:3", "s->r")
}

// Owner and mode come out as the entry says also where creation gives
// something else: a setgid directory (its group), a default ACL (not the
// umask).
func TestApplyOwnerAndModeAtCreation(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("foreign groups need root")
	}
	// A default ACL of user::rwx group::rwx other::--- (version 2).
	acl := []byte{2, 0, 0, 0, 1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, 4, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, 0x20, 0, 0, 0, 0xff, 0xff, 0xff, 0xff}
	root := t.TempDir()
	apply(t, root, ApplyOptions{},
		entry{name: "g", typ: tar.TypeDir, mode: 0o2775, gid: 50},
		entry{name: "g/root", body: "r"},
		entry{name: "g/staff", body: "s", gid: 50},
		entry{name: "g/lnk", typ: tar.TypeSymlink, link: "root"},
		entry{name: "acl", typ: tar.TypeDir, mode: 0o755, xattrs: map[string]string{"system.posix_acl_default": string(acl)}},
		entry{name: "acl/f", body: "f", mode: 0o644},
		entry{name: "acl/x", body: "x", mode: 0o755, uid: 3},
	)
	tests := []struct {
		name     string
		uid, gid uint32
		perm     uint32
	}{
		{"g/root", 0, 0, 0o644}, {"g/staff", 0, 50, 0o644}, {"g/lnk", 0, 0, 0o777},
		{"acl/f", 0, 0, 0o644}, {"acl/x", 3, 0, 0o755},
	}
	for _, tt := range tests {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, tt.name), &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != tt.uid || st.Gid != tt.gid || st.Mode&0o7777 != tt.perm {
			t.Errorf("%s: %d:%d %#o, want %d:%d %#o", tt.name, st.Uid, st.Gid, st.Mode&0o7777, tt.uid, tt.gid, tt.perm)
		}
	}
}

// A parent that does not resolve inside the root (a symlink to a path the
// root lacks) is not replaced by a directory, and the lower directory's
// mode is never applied through it.
func TestApplyImplicitParentThroughSymlink(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("owners of the lower directory need root")
	}
	base := t.TempDir()
	lower, upper, outside := filepath.Join(base, "l"), filepath.Join(base, "u"), filepath.Join(base, "outside")
	for _, d := range []string{lower, upper, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, lower, ApplyOptions{}, entry{name: "a", typ: tar.TypeDir, mode: 0o777, uid: 1234, gid: 1234})
	_, err := Apply(context.Background(), upper, bytes.NewReader(buildTar(t, symlink("a", outside), file("a/x", "x"))),
		ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: []string{lower}})
	if err == nil {
		t.Error("apply below a symlink that leads nowhere inside the root: no error")
	}
	var st unix.Stat_t
	if err := unix.Stat(outside, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o755 || st.Uid != 0 {
		t.Errorf("the symlink's target outside the root changed: %#o %d:%d", st.Mode&0o7777, st.Uid, st.Gid)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("written outside the root: %v", ents)
	}
}
