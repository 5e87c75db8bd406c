package content

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// The child process of TestIngestSIGKILL: it writes the first
// GANTRY_CRASH_WRITE bytes of crashBlob into an ingest of the store at
// GANTRY_CRASH_ROOT, says "ready" and waits to be killed.
const crashEnv = "GANTRY_CRASH_ROOT"

func crashBlob() []byte {
	b := make([]byte, 3<<20)
	r := rand.NewChaCha8([32]byte{7})
	_, _ = r.Read(b)
	return b
}

func TestIngestCrashChild(t *testing.T) {
	root := os.Getenv(crashEnv)
	if root == "" {
		t.Skip("child process of TestIngestSIGKILL")
	}
	n, err := strconv.Atoi(os.Getenv("GANTRY_CRASH_WRITE"))
	if err != nil {
		t.Fatal(err)
	}
	blob := crashBlob()
	s, err := NewStore(root)
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Writer(context.Background(), "crash", ocispec.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob))})
	if err != nil {
		t.Fatal(err)
	}
	for off := 0; off < n; off += 64 << 10 {
		if _, err := w.Write(blob[off:min(n, off+64<<10)]); err != nil {
			t.Fatal(err)
		}
	}
	fmt.Println("ready")
	select {} // killed here, the Writer open and its ingest locked
}

// TestIngestSIGKILL kills a process in the middle of an ingest (and one
// that wrote everything but did not commit) and checks that a new Store
// sees nothing partial, can take the ingest over and resume it.
func TestIngestSIGKILL(t *testing.T) {
	blob := crashBlob()
	want := digest.FromBytes(blob)
	for _, written := range []int{len(blob) / 3, len(blob)} {
		t.Run(strconv.Itoa(written), func(t *testing.T) {
			root := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestIngestCrashChild$", "-test.v")
			cmd.Env = append(os.Environ(), crashEnv+"="+root, "GANTRY_CRASH_WRITE="+strconv.Itoa(written))
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
			sc := bufio.NewScanner(out)
			ready := false
			for sc.Scan() {
				if sc.Text() == "ready" {
					ready = true
					break
				}
			}
			if !ready {
				t.Fatalf("child did not get ready: %v", sc.Err())
			}
			if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			if err := cmd.Wait(); err == nil {
				t.Fatal("child exited cleanly; want killed")
			}

			ctx := context.Background()
			s, err := NewStore(root)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.Info(ctx, want); !errdefs.IsNotFound(err) {
				t.Fatalf("blob visible after a killed ingest: %v", err)
			}
			if entries, _ := os.ReadDir(filepath.Join(root, "blobs", "sha256")); len(entries) != 0 {
				t.Fatalf("files under blobs/: %v", entries)
			}
			ings, err := s.Ingests(ctx)
			if err != nil || len(ings) != 1 || ings[0].Ref != "crash" || ings[0].Offset != int64(written) || ings[0].Expected != want {
				t.Fatalf("ingests after the kill: %+v, %v; want crash at %d", ings, err, written)
			}
			// The dead process's lock went with it.
			w, err := s.Writer(ctx, "crash", ocispec.Descriptor{Digest: want, Size: int64(len(blob))})
			if err != nil {
				t.Fatal(err)
			}
			if w.Offset() != int64(written) {
				t.Fatalf("resumed at %d, want %d", w.Offset(), written)
			}
			if _, err := w.Write(blob[w.Offset():]); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := s.Verify(ctx, want); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestIngestReadOnlyResume: a process killed inside Commit after the chmod
// to read-only leaves a read-only ingest; resuming makes it writable.
func TestIngestReadOnlyResume(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("hello, read-only ingest")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	w, err := s.Writer(ctx, "ro", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data[:5]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.ingestDir("ro"), ingestDataFile)
	if err := os.Chmod(path, 0o444); err != nil {
		t.Fatal(err)
	}
	w, err = s.Writer(ctx, "ro", desc)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm()&0o200 == 0 {
		t.Fatalf("ingest data still read-only: %v, %v", st.Mode(), err)
	}
	if w.Offset() != 5 {
		t.Fatalf("offset %d, want 5", w.Offset())
	}
	if _, err := w.Write(data[5:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestFetchFailureIngest: a failed fetch keeps an ingest that holds bytes
// (for a resume) and removes an empty one.
func TestFetchFailureIngest(t *testing.T) {
	ctx := context.Background()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("some blob")
	desc := ocispec.Descriptor{Digest: digest.FromBytes(data), Size: int64(len(data))}
	boom := fmt.Errorf("source failed: %w", errdefs.ErrUnavailable)
	if err := s.Fetch(ctx, desc, func(w *Writer) error { return boom }); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if ings, err := s.Ingests(ctx); err != nil || len(ings) != 0 {
		t.Fatalf("empty ingest kept: %+v, %v", ings, err)
	}
	if err := s.Fetch(ctx, desc, func(w *Writer) error { _, _ = w.Write(data[:4]); return boom }); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if ings, err := s.Ingests(ctx); err != nil || len(ings) != 1 || ings[0].Offset != 4 {
		t.Fatalf("partial ingest not kept: %+v, %v", ings, err)
	}
	if err := s.Fetch(ctx, desc, func(w *Writer) error {
		if w.Offset() != 4 {
			return fmt.Errorf("resumed at %d", w.Offset())
		}
		_, err := w.Write(data[4:])
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
