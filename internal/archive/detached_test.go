package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/archive/archivetest"
)

// layerCase builds lower layers with Apply (the first in WhiteoutRemove
// form, as a snapshot without parent gets it, the others in overlay form
// on those below) and one upper layer twice: with Apply and Parents (the
// sequential unpack) and with ApplyDetached then Fix (the parallel one).
type layerCase struct {
	name   string
	lowers [][]entry
	upper  []entry
	// needsLowers: ApplyDetached must refuse the layer.
	needsLowers bool
	// now lists implicit directories with no lower directory: their times
	// are those of the apply, not comparable.
	now []string
}

func TestApplyDetachedMatchesSequential(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay whiteouts and owners need root")
	}
	t1 := time.Date(2021, 3, 4, 5, 6, 7, 800, time.UTC)
	t2 := time.Date(2022, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := []layerCase{{
		name: "implicit dirs",
		lowers: [][]entry{{
			{name: "usr", typ: tar.TypeDir, mode: 0o750, uid: 10, gid: 20, mtime: t1},
			{name: "usr/lib", typ: tar.TypeDir, mode: 0o700, uid: 11, gid: 21, mtime: t2},
			file("usr/lib/old", "o"),
			{name: "var", typ: tar.TypeDir, mode: 0o711, mtime: t1},
		}, {
			// The topmost lower wins.
			{name: "var", typ: tar.TypeDir, mode: 0o755, uid: 3, gid: 4, mtime: t2},
		}},
		upper: []entry{
			file("usr/lib/new", "n"), file("usr/lib/deeper/still/f", "f"),
			file("var/x", "x"), file("nolower/y", "y"),
			// An implicit directory given its entry later keeps the entry's.
			file("late/f", "f"), {name: "late", typ: tar.TypeDir, mode: 0o705, uid: 7, gid: 8, mtime: t1},
			{name: "usr/lib/deeper", typ: tar.TypeDir, mode: 0o777, mtime: t2},
		},
		now: []string{"nolower", "usr/lib/deeper/still"},
	}, {
		name: "whiteouts and opaque dirs",
		lowers: [][]entry{{
			file("a", "a"), file("d/x", "x"), file("d/y", "y"), file("o/old", "o"),
			{name: "w", typ: tar.TypeDir, mode: 0o700, uid: 5, gid: 5, mtime: t1}, file("w/gone", "g"),
		}},
		upper: []entry{
			file(".wh.a", ""), file("d/.wh.x", ""), dir("o"), file("o/.wh..wh..opq", ""), file("o/new", "n"),
			// The parent of a whiteout is implicit: it is copied up.
			file("w/.wh.gone", ""),
			file("q/f", "f"), file("q/.wh..wh..opq", ""),
		},
		now: []string{"q"},
	}, {
		name:   "whiteouts of the layer's own entries",
		lowers: [][]entry{{file("foo", "l"), file("d/x", "x"), file("e/x", "x")}},
		upper: []entry{
			file("foo", "n"), file(".wh.foo", ""), dir("d"), file("d/y", "y"), file(".wh.d", ""),
			file(".wh.e", ""), file("e/y", "y"),
		},
	}, {
		name: "implicit directory over a whited-out lower directory",
		lowers: [][]entry{
			{{name: "f", typ: tar.TypeDir, mode: 0o700, uid: 10, gid: 20, mtime: t1}, file("f/old", "o")},
			{file(".wh.f", "")},
		},
		upper: []entry{file("f/new", "n")},
		now:   []string{"f"},
	}, {
		name:   "hardlinks within the layer",
		lowers: [][]entry{{file("base", "b")}},
		upper: []entry{
			entry{name: "t/target", body: "t", mode: 0o640, uid: 1, gid: 2, mtime: t1},
			hardlink("t/link", "t/target"), hardlink("other/link2", "/t/target"),
		},
		now: []string{"t", "other"},
	}, {
		name:   "hardlink to a lower layer",
		lowers: [][]entry{{file("shared", "s")}},
		upper:  []entry{file("f", "f"), hardlink("shared-link", "shared")},
		// Detached refuses it: the unpack applies it again sequentially.
		needsLowers: true,
	}, {
		name: "setgid lower directory",
		lowers: [][]entry{{
			{name: "g", typ: tar.TypeDir, mode: 0o2775, uid: 0, gid: 50, mtime: t1},
		}},
		// g/sub has no lower directory: in a sequential apply it inherits
		// g's group and setgid bit, copied up just before.
		upper: []entry{file("g/sub/deep/f", "f"), entry{name: "g/file", body: "x", gid: 50}, symlink("g/l", "file")},
		now:   []string{"g/sub", "g/sub/deep"},
	}, {
		name:        "replacement below an implicit directory",
		lowers:      [][]entry{{dir("d")}},
		upper:       []entry{file("d/a", "1"), file("d/a", "2")},
		needsLowers: true,
	}, {
		name:   "replacement without implicit directories",
		lowers: [][]entry{{dir("d")}},
		upper:  []entry{dir("d"), file("d/a", "1"), file("d/a", "2"), dir("d/a"), file("d/a/b", "3")},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			var lowers []string // topmost first
			for i, l := range tc.lowers {
				dir := filepath.Join(base, fmt.Sprintf("l%d", i))
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
				opts := ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: lowers}
				if i == 0 {
					opts = ApplyOptions{Whiteouts: WhiteoutRemove}
				}
				apply(t, dir, opts, l...)
				lowers = append([]string{dir}, lowers...)
			}
			seq, det := filepath.Join(base, "seq"), filepath.Join(base, "det")
			for _, d := range []string{seq, det} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			tarball := buildTar(t, tc.upper...)
			if _, err := Apply(context.Background(), seq, bytes.NewReader(tarball), ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: lowers}); err != nil {
				t.Fatalf("sequential apply: %v", err)
			}
			n, d, err := ApplyDetached(context.Background(), det, bytes.NewReader(tarball), nil)
			if tc.needsLowers {
				if !errors.Is(err, ErrNeedsLowers) {
					t.Fatalf("detached apply: got %v, want ErrNeedsLowers", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("detached apply: %v", err)
			}
			if n != int64(len(tarball)) {
				t.Errorf("detached apply read %d bytes of %d", n, len(tarball))
			}
			if err := d.Fix(det, lowers); err != nil {
				t.Fatalf("fix: %v", err)
			}
			now := time.Now().UnixNano()
			for _, rel := range tc.now {
				for _, r := range []string{seq, det} {
					ts := []unix.Timespec{unix.NsecToTimespec(now), unix.NsecToTimespec(now)}
					if err := unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(r, rel), ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
						t.Fatal(err)
					}
				}
			}
			for _, r := range []string{seq, det} { // the roots themselves
				if err := os.Chtimes(r, time.Unix(1, 0), time.Unix(1, 0)); err != nil {
					t.Fatal(err)
				}
			}
			got, want := archivetest.Tree(t, det, nil), archivetest.Tree(t, seq, nil)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("detached then fixed:\n%s\nsequential:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
