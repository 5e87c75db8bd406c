package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func descOf(b []byte) ocispec.Descriptor {
	return ocispec.Descriptor{Digest: digest.FromBytes(b), Size: int64(len(b))}
}

func blob(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func writeBlob(t *testing.T, s *Store, ref string, b []byte) {
	t.Helper()
	ctx := context.Background()
	w, err := s.Writer(ctx, ref, descOf(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWriteCommitRead(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(100000, 1)
	d := descOf(b)
	writeBlob(t, s, "r1", b)

	info, err := s.Info(ctx, d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != d.Size || info.Digest != d.Digest {
		t.Fatalf("info = %+v, want %v %d", info, d.Digest, d.Size)
	}
	if want := filepath.Join(s.Root(), "blobs", "sha256", d.Digest.Encoded()); s.Path(d.Digest) != want {
		t.Fatalf("path = %q, want %q", s.Path(d.Digest), want)
	}
	f, err := s.Open(ctx, d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(f)
	f.Close()
	if !bytes.Equal(got, b) {
		t.Fatal("content differs")
	}
	if err := s.Verify(ctx, d.Digest); err != nil {
		t.Fatal(err)
	}
	ingests, err := s.Ingests(ctx)
	if err != nil || len(ingests) != 0 {
		t.Fatalf("ingests after commit = %v, %v; want none", ingests, err)
	}
	var walked []digest.Digest
	if err := s.Walk(ctx, func(i Info) error { walked = append(walked, i.Digest); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(walked) != 1 || walked[0] != d.Digest {
		t.Fatalf("walk = %v", walked)
	}
	if err := s.Delete(ctx, d.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, d.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("info after delete: %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, d.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	if _, err := s.Open(ctx, d.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("open after delete: %v, want ErrNotFound", err)
	}
}

func TestBadDigests(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	for _, d := range []digest.Digest{"", "sha256:zz", "md5:d41d8cd98f00b204e9800998ecf8427e", "sha256"} {
		if _, err := s.Info(ctx, d); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("Info(%q) = %v, want ErrInvalidArgument", d, err)
		}
		if s.Path(d) != "" {
			t.Errorf("Path(%q) = %q, want empty", d, s.Path(d))
		}
	}
}

func TestNothingVisibleBeforeCommit(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(4096, 3)
	d := descOf(b)
	w, err := s.Writer(ctx, "r", d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	// Fully written but not committed: not a blob yet.
	if _, err := s.Info(ctx, d.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("info before commit: %v, want ErrNotFound", err)
	}
	if _, err := os.Stat(s.Path(d.Digest)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("blob file exists before commit: %v", err)
	}
	n := 0
	s.Walk(ctx, func(Info) error { n++; return nil })
	if n != 0 {
		t.Fatalf("walk saw %d blobs before commit", n)
	}
	ingests, err := s.Ingests(ctx)
	if err != nil || len(ingests) != 1 || ingests[0].Ref != "r" || ingests[0].Offset != int64(len(b)) || ingests[0].Expected != d.Digest {
		t.Fatalf("ingests = %+v, %v", ingests, err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, d.Digest); err != nil {
		t.Fatalf("info after commit: %v", err)
	}
	st, _ := os.Stat(s.Path(d.Digest))
	if st.Mode().Perm() != 0o444 {
		t.Fatalf("blob mode %v, want 0444", st.Mode().Perm())
	}
}

func TestResumeAfterClose(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(50000, 9)
	d := descOf(b)

	// "Crash" half-way: write part, close without commit.
	w, err := s.Writer(ctx, "pull-layer", d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b[:20000]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Info(ctx, d.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("half ingest visible: %v", err)
	}
	// A new Store on the same root (a restarted daemon) resumes it.
	s2, err := NewStore(s.Root())
	if err != nil {
		t.Fatal(err)
	}
	w, err = s2.Writer(ctx, "pull-layer", d)
	if err != nil {
		t.Fatal(err)
	}
	if w.Offset() != 20000 {
		t.Fatalf("resumed offset = %d, want 20000", w.Offset())
	}
	if _, err := w.Write(b[w.Offset():]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s2.Verify(ctx, d.Digest); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.IngestStatus(ctx, "pull-layer"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("ingest after commit: %v, want ErrNotFound", err)
	}
}

func TestResumeForOtherBlobStartsOver(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	a, b := blob(1000, 1), blob(800, 2)
	w, _ := s.Writer(ctx, "r", descOf(a))
	w.Write(a[:500])
	w.Close()
	w, err := s.Writer(ctx, "r", descOf(b))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if w.Offset() != 0 {
		t.Fatalf("offset = %d for an ingest of another blob, want 0", w.Offset())
	}
}

func TestSameRefLocked(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(10, 1)
	w, err := s.Writer(ctx, "r", descOf(b))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(ctx, "r", descOf(b)); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("second writer on a held ref: %v, want ErrUnavailable", err)
	}
	if err := s.AbortIngest(ctx, "r"); !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("abort of a held ingest: %v, want ErrUnavailable", err)
	}
	w.Close()
	if err := s.AbortIngest(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	if err := s.AbortIngest(ctx, "r"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("abort twice: %v, want ErrNotFound", err)
	}
}

func TestWrongDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	good := blob(1000, 1)
	bad := blob(1000, 2)
	d := descOf(good)
	w, err := s.Writer(ctx, "r", d)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(bad)
	err = w.Commit(ctx)
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("commit of wrong content: %v, want ErrInvalidArgument", err)
	}
	for _, want := range []string{string(d.Digest), string(digest.FromBytes(bad))} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if _, err := s.IngestStatus(ctx, "r"); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatalf("bad ingest kept: %v", err)
	}
	if _, err := s.Info(ctx, d.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal("bad content became visible")
	}
	if _, err := s.Info(ctx, digest.FromBytes(bad)); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal("bad content became visible under its own digest")
	}
}

func TestWrongSize(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(1000, 1)
	d := descOf(b)

	t.Run("short", func(t *testing.T) {
		w, err := s.Writer(ctx, "short", d)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.Write(b[:999])
		if err := w.Commit(ctx); !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "size 999, expected 1000") {
			t.Fatalf("short commit: %v", err)
		}
		if _, err := s.Info(ctx, d.Digest); !errors.Is(err, errdefs.ErrNotFound) {
			t.Fatal("short content became visible")
		}
		// The ingest is kept: the rest completes it.
		w.Write(b[999:])
		if err := w.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		s.Delete(ctx, d.Digest)
	})
	t.Run("long", func(t *testing.T) {
		w, err := s.Writer(ctx, "long", d)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		w.Write(b)
		if n, err := w.Write([]byte("x")); n != 0 || !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("write past size = %d, %v; want 0, ErrInvalidArgument", n, err)
		}
		if w.Offset() != 1000 {
			t.Fatalf("offset %d after refused write", w.Offset())
		}
	})
	t.Run("size says less than the content", func(t *testing.T) {
		d2 := ocispec.Descriptor{Digest: d.Digest, Size: 10}
		w, err := s.Writer(ctx, "lying", d2)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		if _, err := w.Write(b); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Fatalf("write: %v, want ErrInvalidArgument", err)
		}
	})
}

func TestUnknownDigest(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(321, 5)
	w, err := s.Writer(ctx, "import", ocispec.Descriptor{})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if w.Digest() != digest.FromBytes(b) {
		t.Fatalf("digest = %s", w.Digest())
	}
	if _, err := s.Info(ctx, digest.FromBytes(b)); err != nil {
		t.Fatal(err)
	}
}

func TestTruncate(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(1000, 1)
	w, _ := s.Writer(ctx, "r", descOf(b))
	w.Write(b[:600])
	w.Write([]byte("garbage"))
	if err := w.Truncate(600); err != nil {
		t.Fatal(err)
	}
	w.Write(b[600:])
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWritersSameBlob(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(1<<20, 7)
	d := descOf(b)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Writer(ctx, fmt.Sprintf("writer-%d", i), d)
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			for off := 0; off < len(b); off += 4096 {
				if _, err := w.Write(b[off : off+4096]); err != nil {
					errs <- err
					return
				}
			}
			errs <- w.Commit(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Verify(ctx, d.Digest); err != nil {
		t.Fatal(err)
	}
	if ing, _ := s.Ingests(ctx); len(ing) != 0 {
		t.Fatalf("ingests left: %+v", ing)
	}
}

func TestVerifyCorrupt(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(100, 1)
	d := descOf(b)
	writeBlob(t, s, "r", b)
	p := s.Path(d.Digest)
	os.Chmod(p, 0o644)
	if err := os.WriteFile(p, blob(100, 2), 0o644); err != nil {
		t.Fatal(err)
	}
	err := s.Verify(ctx, d.Digest)
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), string(d.Digest)) {
		t.Fatalf("verify corrupt: %v", err)
	}
}

func TestFetchSingleFlight(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(200000, 4)
	d := descOf(b)
	var calls atomic.Int32
	release := make(chan struct{})
	fetch := func(w *Writer) error {
		calls.Add(1)
		<-release
		_, err := w.Write(b[w.Offset():])
		return err
	}
	var wg sync.WaitGroup
	errs := make([]error, 20)
	var started sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		started.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			errs[i] = s.Fetch(ctx, d, fetch)
		}()
	}
	started.Wait()
	// Let the callers pile up on the flight; correctness does not depend
	// on this wait, only how many of them share the first run.
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
	}
	// Callers that arrive after the blob is committed do not call fetch
	// either, so the total is exactly one whatever the scheduling.
	if n := calls.Load(); n != 1 {
		t.Fatalf("fetch func ran %d times, want 1", n)
	}
	if err := s.Verify(ctx, d.Digest); err != nil {
		t.Fatal(err)
	}
	if err := s.Fetch(ctx, d, fetch); err != nil || calls.Load() != 1 {
		t.Fatalf("fetch of a present blob: %v, calls %d", err, calls.Load())
	}
}

func TestFetchFailureRetriesAndResumes(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(10000, 4)
	d := descOf(b)
	boom := errors.New("connection reset")
	err := s.Fetch(ctx, d, func(w *Writer) error {
		w.Write(b[:4000])
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("first fetch: %v, want %v", err, boom)
	}
	var resumedAt int64 = -1
	err = s.Fetch(ctx, d, func(w *Writer) error {
		resumedAt = w.Offset()
		_, err := w.Write(b[w.Offset():])
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if resumedAt != 4000 {
		t.Fatalf("second fetch resumed at %d, want 4000", resumedAt)
	}
	if err := s.Verify(ctx, d.Digest); err != nil {
		t.Fatal(err)
	}
}

func TestFetchBadContent(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	b := blob(100, 4)
	d := descOf(b)
	err := s.Fetch(ctx, d, func(w *Writer) error {
		_, err := w.Write(blob(100, 5))
		return err
	})
	if !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("fetch of bad content: %v", err)
	}
	if ing, _ := s.Ingests(ctx); len(ing) != 0 {
		t.Fatalf("bad ingest kept: %+v", ing)
	}
	if _, err := s.Info(ctx, d.Digest); !errors.Is(err, errdefs.ErrNotFound) {
		t.Fatal("bad content visible")
	}
}

func TestFetchWaiterSurvivesLeaderCancel(t *testing.T) {
	s := newStore(t)
	b := blob(5000, 6)
	d := descOf(b)
	leaderCtx, cancel := context.WithCancel(context.Background())
	started := make(chan struct{})
	leaderErr := make(chan error, 1)
	go func() {
		leaderErr <- s.Fetch(leaderCtx, d, func(w *Writer) error {
			close(started)
			<-leaderCtx.Done()
			return leaderCtx.Err()
		})
	}()
	<-started
	waiterErr := make(chan error, 1)
	go func() {
		waiterErr <- s.Fetch(context.Background(), d, func(w *Writer) error {
			_, err := w.Write(b[w.Offset():])
			return err
		})
	}()
	// Give the waiter a chance to join the leader's flight; whether it
	// joins or starts its own, it must succeed with its own live context.
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-leaderErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("leader: %v, want context.Canceled", err)
	}
	if err := <-waiterErr; err != nil {
		t.Fatalf("waiter: %v", err)
	}
	if err := s.Verify(context.Background(), d.Digest); err != nil {
		t.Fatal(err)
	}
}
