package content

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// IngestInfo describes an ingest that has not been committed yet.
type IngestInfo struct {
	Ref string
	// Expected is the digest the ingest must have at commit ("" if unknown).
	Expected digest.Digest
	// Total is the expected size, or -1 if unknown.
	Total int64
	// Offset is how many bytes have been written so far.
	Offset    int64
	StartedAt time.Time
	UpdatedAt time.Time
}

// ingestMeta is <ingest>/ingest.json.
type ingestMeta struct {
	Ref       string        `json:"ref"`
	Expected  digest.Digest `json:"expected,omitempty"`
	Total     int64         `json:"total"`
	StartedAt time.Time     `json:"startedAt"`
}

const (
	ingestMetaFile = "ingest.json"
	ingestDataFile = "data"
)

func readIngestInfo(dir string) (IngestInfo, error) {
	b, err := os.ReadFile(filepath.Join(dir, ingestMetaFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return IngestInfo{}, err
		}
		return IngestInfo{}, fmt.Errorf("read ingest %q: %w", dir, err)
	}
	var m ingestMeta
	if err := json.Unmarshal(b, &m); err != nil {
		return IngestInfo{}, fmt.Errorf("decode %q: %w", filepath.Join(dir, ingestMetaFile), err)
	}
	info := IngestInfo{Ref: m.Ref, Expected: m.Expected, Total: m.Total, StartedAt: m.StartedAt, UpdatedAt: m.StartedAt}
	if st, err := os.Stat(filepath.Join(dir, ingestDataFile)); err == nil {
		info.Offset = st.Size()
		info.UpdatedAt = st.ModTime()
	}
	return info, nil
}

// lockIngest takes an exclusive, non-blocking flock on the ingest directory
// dir, which must exist. A held lock is an ErrUnavailable error. The
// returned function releases the lock.
func lockIngest(dir, ref string) (func(), error) {
	for range 5 {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
			}
			return nil, fmt.Errorf("open ingest %q: %w", ref, err)
		}
		if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			unix.Close(fd)
			if errors.Is(err, unix.EWOULDBLOCK) {
				return nil, fmt.Errorf("ingest %q is being written: %w", ref, errdefs.ErrUnavailable)
			}
			return nil, fmt.Errorf("lock ingest %q: %w", ref, err)
		}
		// The holder before us may have committed and removed the
		// directory; only a lock on the directory that is still there counts.
		var held, cur unix.Stat_t
		if err := unix.Fstat(fd, &held); err == nil && unix.Stat(dir, &cur) == nil && held.Ino == cur.Ino && held.Dev == cur.Dev {
			return func() { unix.Close(fd) }, nil
		}
		unix.Close(fd)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("create ingest %q: %w", ref, err)
		}
	}
	return nil, fmt.Errorf("lock ingest %q: directory keeps changing: %w", ref, errdefs.ErrUnavailable)
}

// Writer writes one blob into an ingest. It is not safe for concurrent use;
// the ingest is locked while the Writer is open, so a second Writer on the
// same ref fails with ErrUnavailable until this one is committed or closed.
type Writer struct {
	s        *Store
	ref      string
	dir      string
	expected digest.Digest
	total    int64
	f        *os.File
	unlock   func()
	digester digest.Digester
	offset   int64
	done     bool
	dgst     digest.Digest
}

// Writer opens (or resumes) the ingest named ref for a blob expected to be
// desc. desc.Digest, when set, is checked at Commit together with desc.Size;
// an empty desc.Digest accepts any content, and its size is then checked
// only if desc.Size > 0. Offset tells where a resumed ingest stands: the
// caller continues writing from there (for example with a Range request). An
// existing ingest of the same ref that expects another blob starts over.
func (s *Store) Writer(ctx context.Context, ref string, desc ocispec.Descriptor) (*Writer, error) {
	if ref == "" {
		return nil, fmt.Errorf("ingest ref: empty: %w", errdefs.ErrInvalidArgument)
	}
	total := desc.Size
	alg := digest.Canonical
	if desc.Digest != "" {
		if err := validateDigest(desc.Digest); err != nil {
			return nil, fmt.Errorf("ingest %q: %w", ref, err)
		}
		if desc.Size < 0 {
			return nil, fmt.Errorf("ingest %q: size %d: %w", ref, desc.Size, errdefs.ErrInvalidArgument)
		}
		alg = desc.Digest.Algorithm()
	} else if desc.Size <= 0 {
		total = -1
	}
	dir := s.ingestDir(ref)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ingest %q: %w", ref, err)
	}
	unlock, err := lockIngest(dir, ref)
	if err != nil {
		return nil, err
	}
	w, err := s.openIngest(ref, dir, desc.Digest, total, alg)
	if err != nil {
		unlock()
		return nil, err
	}
	w.unlock = unlock
	return w, nil
}

func (s *Store) openIngest(ref, dir string, expected digest.Digest, total int64, alg digest.Algorithm) (*Writer, error) {
	metaPath := filepath.Join(dir, ingestMetaFile)
	dataPath := filepath.Join(dir, ingestDataFile)
	fresh := true
	if b, err := os.ReadFile(metaPath); err == nil {
		var m ingestMeta
		if json.Unmarshal(b, &m) == nil && m.Ref == ref && m.Expected == expected && m.Total == total {
			fresh = false
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read ingest %q: %w", ref, err)
	}
	if fresh {
		b, err := json.Marshal(ingestMeta{Ref: ref, Expected: expected, Total: total, StartedAt: time.Now().UTC()})
		if err != nil {
			return nil, fmt.Errorf("encode ingest %q: %w", ref, err)
		}
		if err := writeFileAtomic(metaPath, b); err != nil {
			return nil, fmt.Errorf("write ingest %q: %w", ref, err)
		}
	}
	flags := os.O_RDWR | os.O_CREATE
	if fresh {
		flags |= os.O_TRUNC
	}
	// A process killed inside Commit, between the chmod to read-only and
	// the rename, leaves a read-only ingest: make it writable again.
	if st, err := os.Stat(dataPath); err == nil && st.Mode().Perm()&0o200 == 0 {
		if err := os.Chmod(dataPath, 0o600); err != nil {
			return nil, fmt.Errorf("open ingest %q: %w", ref, err)
		}
	}
	f, err := os.OpenFile(dataPath, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open ingest %q: %w", ref, err)
	}
	w := &Writer{s: s, ref: ref, dir: dir, expected: expected, total: total, f: f, digester: alg.Digester()}
	// Resume: hash what is there so Commit can check the whole blob.
	n, err := io.Copy(w.digester.Hash(), f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read ingest %q: %w", ref, err)
	}
	w.offset = n
	if total >= 0 && n > total {
		if err := w.Truncate(0); err != nil {
			f.Close()
			return nil, err
		}
	}
	return w, nil
}

// writeFileAtomic writes b to path through a temporary file and a rename.
func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Ref returns the ingest's name.
func (w *Writer) Ref() string { return w.ref }

// Offset returns how many bytes the ingest holds.
func (w *Writer) Offset() int64 { return w.offset }

// Digest returns the digest of what was written so far; after a successful
// Commit it is the committed blob's digest.
func (w *Writer) Digest() digest.Digest {
	if w.dgst != "" {
		return w.dgst
	}
	return w.digester.Digest()
}

// Write appends p to the ingest. Writing past the expected size is an
// ErrInvalidArgument error and writes nothing.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, fmt.Errorf("write ingest %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	if w.total >= 0 && w.offset+int64(len(p)) > w.total {
		return 0, fmt.Errorf("write ingest %q: %d bytes past the expected size %d: %w",
			w.ref, w.offset+int64(len(p))-w.total, w.total, errdefs.ErrInvalidArgument)
	}
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.offset += int64(n)
	if err != nil {
		return n, fmt.Errorf("write ingest %q: %w", w.ref, err)
	}
	return n, nil
}

// Truncate cuts the ingest back to size bytes (at most Offset()), for a
// source that cannot resume where the ingest stands.
func (w *Writer) Truncate(size int64) error {
	if w.done {
		return fmt.Errorf("truncate ingest %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	if size < 0 || size > w.offset {
		return fmt.Errorf("truncate ingest %q to %d: outside 0..%d: %w", w.ref, size, w.offset, errdefs.ErrInvalidArgument)
	}
	if err := w.f.Truncate(size); err != nil {
		return fmt.Errorf("truncate ingest %q: %w", w.ref, err)
	}
	if _, err := w.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("truncate ingest %q: %w", w.ref, err)
	}
	w.digester = w.digester.Digest().Algorithm().Digester()
	if _, err := io.CopyN(w.digester.Hash(), w.f, size); err != nil {
		return fmt.Errorf("truncate ingest %q: rehash: %w", w.ref, err)
	}
	w.offset = size
	return nil
}

// Commit checks the ingest's size and digest and, if they match what the
// Writer was opened for, makes it a blob with an atomic rename (the file and
// the blob directory are fsynced). A short ingest is an
// ErrFailedPrecondition error and is kept (write the rest and commit again).
// A digest mismatch is an ErrInvalidArgument error naming both digests, and
// the bad ingest is removed. If the blob already exists, the ingest is
// dropped and Commit succeeds. The Writer is closed after a successful or
// mismatching Commit.
func (w *Writer) Commit(ctx context.Context) error {
	if w.done {
		return fmt.Errorf("commit ingest %q: writer closed: %w", w.ref, errdefs.ErrFailedPrecondition)
	}
	if w.total >= 0 && w.offset != w.total {
		return fmt.Errorf("commit ingest %q: size %d, expected %d: %w", w.ref, w.offset, w.total, errdefs.ErrFailedPrecondition)
	}
	got := w.digester.Digest()
	if w.expected != "" && got != w.expected {
		w.discard()
		return fmt.Errorf("commit ingest %q: content has digest %s, expected %s: %w", w.ref, got, w.expected, errdefs.ErrInvalidArgument)
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("commit ingest %q: sync: %w", w.ref, err)
	}
	if err := w.f.Chmod(0o444); err != nil {
		return fmt.Errorf("commit ingest %q: %w", w.ref, err)
	}
	target := w.s.Path(got)
	blobDir := filepath.Dir(target)
	if err := os.MkdirAll(blobDir, 0o700); err != nil {
		return fmt.Errorf("commit ingest %q: %w", w.ref, err)
	}
	if _, err := os.Stat(target); err == nil {
		w.discard()
		w.dgst = got
		return nil
	}
	if err := os.Rename(filepath.Join(w.dir, ingestDataFile), target); err != nil {
		return fmt.Errorf("commit ingest %q as %s: %w", w.ref, got, err)
	}
	if err := syncDir(blobDir); err != nil {
		return fmt.Errorf("commit ingest %q as %s: %w", w.ref, got, err)
	}
	w.discard()
	w.dgst = got
	return nil
}

// discard closes the Writer and removes its ingest.
func (w *Writer) discard() {
	w.f.Close()
	os.RemoveAll(w.dir)
	w.unlock()
	w.done = true
}

// Close releases the Writer and keeps the ingest for a later resume. It is a
// no-op after Commit.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	err := w.f.Close()
	w.unlock()
	if err != nil {
		return fmt.Errorf("close ingest %q: %w", w.ref, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %q: %w", dir, err)
	}
	return nil
}
