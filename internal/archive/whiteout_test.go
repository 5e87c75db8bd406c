package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestApplyWhiteoutsSameLayer: a whiteout hides only what the lower layers
// have, never an entry of its own layer, whichever comes first; the merged
// tree is the same in both whiteout modes.
func TestApplyWhiteoutsSameLayer(t *testing.T) {
	cases := []struct {
		name         string
		lower, layer []entry
		want         []string
	}{{
		name:  "whiteout after the layer's file",
		lower: []entry{file("foo", "lower")},
		layer: []entry{file("foo", "layer"), file(".wh.foo", "")},
		want:  []string{"foo:layer"},
	}, {
		name:  "whiteout before the layer's file",
		lower: []entry{file("foo", "lower")},
		layer: []entry{file(".wh.foo", ""), file("foo", "layer")},
		want:  []string{"foo:layer"},
	}, {
		name:  "whiteout after the layer's directory",
		lower: []entry{file("d/x", "x")},
		layer: []entry{dir("d"), file("d/y", "y"), file(".wh.d", "")},
		want:  []string{"d/", "d/y:y"},
	}, {
		name:  "whiteout before the layer's directory",
		lower: []entry{file("d/x", "x")},
		layer: []entry{file(".wh.d", ""), dir("d"), file("d/y", "y")},
		want:  []string{"d/", "d/y:y"},
	}, {
		name:  "whiteout of a directory the layer writes into",
		lower: []entry{file("d/x", "x"), file("d/sub/z", "z")},
		layer: []entry{file("d/sub/y", "y"), file(".wh.d", "")},
		want:  []string{"d/", "d/sub/", "d/sub/y:y"},
	}, {
		name:  "whiteout below a whited-out directory",
		lower: []entry{file("d/x", "x"), file("d/z", "z"), file("e", "e")},
		layer: []entry{file("d/.wh.x", ""), file(".wh.d", "")},
		want:  []string{"e:e"},
	}, {
		name:  "opaque directory after entries below it",
		lower: []entry{file("o/other", "o"), file("o/sub/old", "old")},
		layer: []entry{file("o/sub/new", "new"), file("o/.wh..wh..opq", "")},
		want:  []string{"o/", "o/sub/", "o/sub/new:new"},
	}}
	for _, tc := range cases {
		t.Run(tc.name+"/remove", func(t *testing.T) {
			root := t.TempDir()
			apply(t, root, ApplyOptions{}, tc.lower...)
			apply(t, root, ApplyOptions{Whiteouts: WhiteoutRemove}, tc.layer...)
			checkTree(t, root, tc.want...)
		})
		t.Run(tc.name+"/overlay", func(t *testing.T) {
			if os.Geteuid() != 0 {
				t.Skip("overlay mount needs root")
			}
			merged := overlayMerged(t, tc.lower, tc.layer)
			checkTree(t, merged, tc.want...)
		})
	}
}

// overlayMerged applies lower, then layer in overlay form on it, mounts
// them and returns the mount point (unmounted at cleanup).
func overlayMerged(t *testing.T, lower, layer []entry) string {
	t.Helper()
	base := t.TempDir()
	l, u, w, m := filepath.Join(base, "l"), filepath.Join(base, "u"), filepath.Join(base, "w"), filepath.Join(base, "m")
	for _, d := range []string{l, u, w, m} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, l, ApplyOptions{}, lower...)
	apply(t, u, ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: []string{l}}, layer...)
	if err := unix.Mount("overlay", m, "overlay", 0, "lowerdir="+l+",upperdir="+u+",workdir="+w); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(m, 0); err != nil {
			t.Error(err)
		}
	})
	return m
}

// TestApplyLowersHidden: a hardlink to a lower file, and a directory the
// layer creates implicitly, see the lower layers as overlayfs merges them:
// what a whiteout, an opaque directory or a file of a higher lower hides is
// not there.
func TestApplyLowersHidden(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay whiteouts and owners need root")
	}
	base := t.TempDir()
	l1, l2 := filepath.Join(base, "l1"), filepath.Join(base, "l2")
	for _, d := range []string{l1, l2} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, l1, ApplyOptions{},
		file("d/secret", "s"), file("e/secret", "s"), file("g/h/secret", "s"), file("plain", "p"),
		entry{name: "f", typ: tar.TypeDir, mode: 0o700, uid: 1000, gid: 1000}, file("f/old", "o"))
	apply(t, l2, ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: []string{l1}},
		dir("d"), file("d/.wh..wh..opq", ""), file("d/mine", "m"), file(".wh.e", ""), file(".wh.f", ""), file("g", "a file"))
	lowers := []string{l2, l1}
	for _, target := range []string{"d/secret", "e/secret", "g/h/secret"} {
		upper := t.TempDir()
		_, err := Apply(context.Background(), upper, bytes.NewReader(buildTar(t, hardlink("h", target))), ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: lowers})
		if !errors.Is(err, unix.ENOENT) {
			t.Errorf("hardlink to the hidden %s: got %v, want ENOENT", target, err)
		}
	}
	upper := t.TempDir()
	apply(t, upper, ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: lowers}, hardlink("h1", "plain"), hardlink("h2", "d/mine"), file("f/new", "n"))
	checkTree(t, upper, "d/", "d/mine:m", "f/", "f/new:n", "h1:p", "h2:m", "plain:p")
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(upper, "f"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&0o7777 != 0o755 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("implicit f over a whited-out lower directory: mode %#o owner %d:%d, want 0755 0:0", st.Mode&0o7777, st.Uid, st.Gid)
	}
}
