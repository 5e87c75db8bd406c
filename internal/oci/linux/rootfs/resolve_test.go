package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestMkdirAllInRootOptions runs MkdirAllInRoot in a temp dir taken as
// the root, with the options the mounts use (none) and those of
// process.cwd (both), on the paths where they differ: ".." after a
// symlink or a missing directory, and a dangling symlink. No root needed.
func TestMkdirAllInRootOptions(t *testing.T) {
	mounts := MkdirOptions{}
	cwd := MkdirOptions{DotDotAfterSymlinks: true, DanglingSymlinkExists: true}
	for _, tc := range []struct {
		name    string
		p       string
		o       MkdirOptions
		made    []string // directories that must exist afterwards
		notMade []string // paths that must not exist afterwards
		errOp   string   // the failing syscall ("" no error) ...
		errPath string   // ... the path inside the root it names ...
		errno   error    // ... and the errno
	}{
		{name: "dotdot after symlink, lexical", p: "/link/../x", o: mounts, made: []string{"/x"}, notMade: []string{"/real/x"}},
		{name: "dotdot after symlink, resolved", p: "/link/../x", o: cwd, made: []string{"/real/x"}, notMade: []string{"/x"}},
		{name: "dotdot after missing dir, lexical", p: "/nope/../d", o: mounts, made: []string{"/d"}, notMade: []string{"/nope"}},
		{name: "dotdot after missing dir, resolved", p: "/nope/../d", o: cwd, made: []string{"/nope", "/d"}},
		{name: "dotdot above the root, lexical", p: "/../../up", o: mounts, made: []string{"/up"}},
		{name: "dotdot above the root, resolved", p: "/../../up", o: cwd, made: []string{"/up"}},
		{name: "dangling symlink, ENOENT", p: "/dangling/y", o: mounts, notMade: []string{"/nowhere"},
			errOp: "openat2", errPath: "/dangling", errno: unix.ENOENT},
		{name: "dangling symlink, EEXIST", p: "/dangling/y", o: cwd, notMade: []string{"/nowhere"},
			errOp: "openat2", errPath: "/dangling", errno: unix.EEXIST},
		{name: "only DanglingSymlinkExists", p: "/dangling/y", o: MkdirOptions{DanglingSymlinkExists: true},
			errOp: "openat2", errPath: "/dangling", errno: unix.EEXIST},
		{name: "only DotDotAfterSymlinks", p: "/link/../z", o: MkdirOptions{DotDotAfterSymlinks: true}, made: []string{"/real/z"}, notMade: []string{"/z"}},
		{name: "through a file", p: "/file/x", o: cwd, errOp: "openat2", errPath: "/file", errno: unix.ENOTDIR},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, "real/sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, target := range map[string]string{"link": "real/sub", "dangling": "nowhere"} {
				if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			root, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(root)

			fd, err := MkdirAllInRoot(root, tc.p, 0o755, tc.o)
			if tc.errOp == "" {
				if err != nil {
					t.Fatalf("MkdirAllInRoot(%q, %+v): %v", tc.p, tc.o, err)
				}
				unix.Close(fd)
			} else {
				var pe *os.PathError
				if !errors.As(err, &pe) || pe.Op != tc.errOp || pe.Path != tc.errPath || !errors.Is(err, tc.errno) {
					t.Fatalf("MkdirAllInRoot(%q, %+v) = %#v, want an *os.PathError{%s %s %v}", tc.p, tc.o, err, tc.errOp, tc.errPath, tc.errno)
				}
			}
			for _, p := range tc.made {
				if st, err := os.Lstat(filepath.Join(dir, p)); err != nil || !st.IsDir() {
					t.Errorf("%s: %v, want a directory", p, err)
				}
			}
			for _, p := range tc.notMade {
				if _, err := os.Lstat(filepath.Join(dir, p)); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists (%v), want nothing made there", p, err)
				}
			}
		})
	}
}
