package specgen

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// readWithin is l.ReadFile(path) that fails the test, instead of hanging
// it, when the read does not return within a few seconds.
func readWithin(t *testing.T, l RootfsLookup, path string) ([]byte, error) {
	t.Helper()
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := l.ReadFile(path)
		done <- result{b, err}
	}()
	select {
	case r := <-done:
		return r.b, r.err
	case <-time.After(10 * time.Second):
		t.Fatalf("ReadFile(%q) still blocked after 10s", path)
		return nil, nil
	}
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		t.Fatal(err)
	}
}

func mknod(t *testing.T, path string, mode uint32, dev int) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mknod(path, mode|0o644, dev); err != nil {
		t.Fatalf("mknod %s: %v", path, err)
	}
}

func TestDirLookupReadFile(t *testing.T) {
	const passwd = "alice:x:7:8::/home/alice:/bin/sh\n"
	// A host file the image must never get read; its absolute path is
	// what the image's symlinks point at.
	canary := filepath.Join(t.TempDir(), "passwd")
	writeFile(t, canary, []byte("alice:x:4242:4242::/canary:/bin/sh\n"))

	tests := []struct {
		name     string
		needRoot bool
		setup    func(t *testing.T, root string)
		want     string // the content read, if wantErr is ""
		wantErr  string // a part of the error
		wantIs   error
	}{{
		name:  "regular file",
		setup: func(t *testing.T, root string) { writeFile(t, root+"/etc/passwd", []byte(passwd)) },
		want:  passwd,
	}, {
		name:   "missing",
		setup:  func(t *testing.T, root string) { os.Mkdir(root+"/etc", 0o755) },
		wantIs: fs.ErrNotExist,
	}, {
		name: "file of the bound",
		setup: func(t *testing.T, root string) {
			writeFile(t, root+"/etc/passwd", bytes.Repeat([]byte{'#'}, maxRootfsFile))
		},
		want: strings.Repeat("#", maxRootfsFile),
	}, {
		name: "absolute symlink inside the root",
		setup: func(t *testing.T, root string) {
			writeFile(t, root+"/data/passwd", []byte(passwd))
			symlink(t, "/data/passwd", root+"/etc/passwd")
		},
		want: passwd,
	}, {
		name: "relative symlink climbing out of the root",
		setup: func(t *testing.T, root string) {
			writeFile(t, root+"/data/passwd", []byte(passwd))
			symlink(t, "../../../../../../../data/passwd", root+"/etc/passwd")
		},
		want: passwd,
	}, {
		name: "symlink to a host file",
		setup: func(t *testing.T, root string) {
			symlink(t, canary, root+"/etc/passwd")
		},
		wantIs: fs.ErrNotExist,
	}, {
		name: "symlink to a host file the image also holds",
		setup: func(t *testing.T, root string) {
			writeFile(t, root+canary, []byte(passwd))
			symlink(t, canary, root+"/etc/passwd")
		},
		want: passwd,
	}, {
		name: "etc a symlink to a host directory",
		setup: func(t *testing.T, root string) {
			symlink(t, filepath.Dir(canary), root+"/etc")
		},
		wantIs: fs.ErrNotExist,
	}, {
		name: "fifo",
		setup: func(t *testing.T, root string) {
			mknod(t, root+"/etc/passwd", unix.S_IFIFO, 0)
		},
		wantErr: "/etc/passwd in the image is a fifo, not a regular file",
		wantIs:  errdefs.ErrInvalidArgument,
	}, {
		name: "absolute symlink inside the root to a fifo",
		setup: func(t *testing.T, root string) {
			mknod(t, root+"/run/passwd", unix.S_IFIFO, 0)
			symlink(t, "/run/passwd", root+"/etc/passwd")
		},
		wantErr: "/etc/passwd in the image is a fifo, not a regular file",
		wantIs:  errdefs.ErrInvalidArgument,
	}, {
		name:     "char device 1:5",
		needRoot: true,
		setup: func(t *testing.T, root string) {
			mknod(t, root+"/etc/passwd", unix.S_IFCHR, int(unix.Mkdev(1, 5)))
		},
		wantErr: "/etc/passwd in the image is a character device, not a regular file",
		wantIs:  errdefs.ErrInvalidArgument,
	}, {
		name: "directory",
		setup: func(t *testing.T, root string) {
			if err := os.MkdirAll(root+"/etc/passwd", 0o755); err != nil {
				t.Fatal(err)
			}
		},
		wantErr: "/etc/passwd in the image is a directory, not a regular file",
		wantIs:  errdefs.ErrInvalidArgument,
	}, {
		name: "larger than the bound",
		setup: func(t *testing.T, root string) {
			writeFile(t, root+"/etc/passwd", nil)
			if err := os.Truncate(root+"/etc/passwd", maxRootfsFile+1); err != nil {
				t.Fatal(err)
			}
		},
		wantErr: "/etc/passwd in the image is larger than 4 MiB",
		wantIs:  errdefs.ErrInvalidArgument,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needRoot && os.Geteuid() != 0 {
				t.Skip("needs root")
			}
			root := t.TempDir()
			tt.setup(t, root)
			b, err := readWithin(t, DirLookup(root), "/etc/passwd")
			if tt.wantErr == "" && tt.wantIs == nil {
				if err != nil || string(b) != tt.want {
					t.Fatalf("got %d bytes %.40q, %v; want %.40q", len(b), b, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("got %d bytes %.40q, want an error", len(b), b)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || (tt.wantIs != nil && !errors.Is(err, tt.wantIs)) {
				t.Fatalf("error %q, want one with %q (is %v)", err, tt.wantErr, tt.wantIs)
			}
		})
	}
}

// A running container that swaps its /etc/passwd between a regular file
// and a symlink to a host path must never get the host file read (gantry
// exec -u NAME reads the file while the container runs).
func TestDirLookupSwappedSymlinkStaysInRoot(t *testing.T) {
	canary := filepath.Join(t.TempDir(), "passwd")
	writeFile(t, canary, []byte("alice:x:4242:4242::/canary:/bin/sh\n"))
	root := t.TempDir()
	etc := root + "/etc"
	writeFile(t, etc+"/passwd", []byte("alice:x:7:8::/home/alice:/bin/sh\n"))

	stop := make(chan struct{})
	swapped := make(chan error, 1)
	go func() {
		swapped <- func() error {
			for {
				select {
				case <-stop:
					return nil
				default:
				}
				if err := os.Symlink(canary, etc+"/.link"); err != nil {
					return err
				}
				if err := os.Rename(etc+"/.link", etc+"/passwd"); err != nil {
					return err
				}
				if err := os.WriteFile(etc+"/.file", []byte("alice:x:7:8::/home/alice:/bin/sh\n"), 0o644); err != nil {
					return err
				}
				if err := os.Rename(etc+"/.file", etc+"/passwd"); err != nil {
					return err
				}
			}
		}()
	}()
	defer func() {
		close(stop)
		if err := <-swapped; err != nil {
			t.Errorf("swap /etc/passwd: %v", err)
		}
	}()

	deadline := time.Now().Add(3 * time.Second)
	var n, read int
	for ; n < 20000 && time.Now().Before(deadline); n++ {
		u, err := ResolveUser("alice", DirLookup(root))
		if err != nil {
			// The symlink resolves in the root to a file that is not there.
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Fatalf("try %d: %v", n, err)
			}
			continue
		}
		read++
		if u.UID != 7 {
			t.Fatalf("try %d: got %+v, from the host file %s", n, u, canary)
		}
	}
	t.Logf("%d tries, %d read the image's file", n, read)
}

func TestResolveUserSpecialPasswd(t *testing.T) {
	root := t.TempDir()
	mknod(t, root+"/etc/passwd", unix.S_IFIFO, 0)
	done := make(chan error, 1)
	go func() {
		_, err := ResolveUser("1000", DirLookup(root))
		done <- err
	}()
	select {
	case err := <-done:
		want := `user "1000": /etc/passwd in the image is a fifo, not a regular file: invalid argument`
		if err == nil || err.Error() != want || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("got %v, want %s", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ResolveUser still blocked on a fifo /etc/passwd after 10s")
	}

	// Without /etc/passwd and /etc/group a numeric user still resolves.
	empty := t.TempDir()
	u, err := ResolveUser("1000:1000", DirLookup(empty))
	if err != nil || u.UID != 1000 || u.GID != 1000 || u.Home != "/" {
		t.Fatalf("no /etc/passwd: got %+v, %v", u, err)
	}
}
