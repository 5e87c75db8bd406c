package content

import (
	"context"
	"crypto/sha256"
	_ "crypto/sha512" // registers sha512 for go-digest
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/singleflight"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Store is a content-addressable store rooted at one directory. It is safe
// for concurrent use by many goroutines; ingests are additionally locked
// with flock so that two processes sharing a root do not write the same
// ingest at once.
type Store struct {
	root    string
	flights singleflight.Group
}

// Info describes a committed blob.
type Info struct {
	Digest    digest.Digest
	Size      int64
	CreatedAt time.Time
}

// NewStore opens (creating if needed) a store rooted at root.
func NewStore(root string) (*Store, error) {
	if root == "" {
		return nil, fmt.Errorf("content store root: %w", errdefs.ErrInvalidArgument)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("content store root %q: %w", root, err)
	}
	for _, d := range []string{filepath.Join(abs, "blobs", string(digest.SHA256)), filepath.Join(abs, "ingest")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("create content store directory %q: %w", d, err)
		}
	}
	return &Store{root: abs}, nil
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// validateDigest checks that dgst is well formed and of a supported algorithm.
func validateDigest(dgst digest.Digest) error {
	if err := dgst.Validate(); err != nil {
		return fmt.Errorf("digest %q: %w: %w", dgst, errdefs.ErrInvalidArgument, err)
	}
	switch dgst.Algorithm() {
	case digest.SHA256, digest.SHA512:
		return nil
	}
	return fmt.Errorf("digest %q: unsupported algorithm %q: %w", dgst, dgst.Algorithm(), errdefs.ErrInvalidArgument)
}

// Path returns where the blob dgst lives (or would live) on disk. It returns
// "" for a malformed digest.
func (s *Store) Path(dgst digest.Digest) string {
	if validateDigest(dgst) != nil {
		return ""
	}
	return filepath.Join(s.root, "blobs", string(dgst.Algorithm()), dgst.Encoded())
}

// Info returns size and creation time of a committed blob, or an
// ErrNotFound error.
func (s *Store) Info(ctx context.Context, dgst digest.Digest) (Info, error) {
	if err := validateDigest(dgst); err != nil {
		return Info{}, err
	}
	st, err := os.Stat(s.Path(dgst))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return Info{}, fmt.Errorf("content %s: %w", dgst, errdefs.ErrNotFound)
		}
		return Info{}, fmt.Errorf("stat content %s: %w", dgst, err)
	}
	return Info{Digest: dgst, Size: st.Size(), CreatedAt: st.ModTime()}, nil
}

// Open opens a committed blob for reading, or returns an ErrNotFound error.
func (s *Store) Open(ctx context.Context, dgst digest.Digest) (*os.File, error) {
	if err := validateDigest(dgst); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(dgst))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("content %s: %w", dgst, errdefs.ErrNotFound)
		}
		return nil, fmt.Errorf("open content %s: %w", dgst, err)
	}
	return f, nil
}

// ReadAll returns the whole content of a committed blob. It is meant for
// small blobs (manifests, configs); maxSize bounds what it will read (0
// means 64 MiB).
func (s *Store) ReadAll(ctx context.Context, dgst digest.Digest, maxSize int64) ([]byte, error) {
	if maxSize <= 0 {
		maxSize = 64 << 20
	}
	f, err := s.Open(ctx, dgst)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("read content %s: %w", dgst, err)
	}
	if int64(len(b)) > maxSize {
		return nil, fmt.Errorf("content %s: larger than %d bytes: %w", dgst, maxSize, errdefs.ErrInvalidArgument)
	}
	return b, nil
}

// Walk calls fn for every committed blob, in digest order. Files in the blob
// directories whose names are not valid digests are skipped. An error from
// fn stops the walk and is returned.
func (s *Store) Walk(ctx context.Context, fn func(Info) error) error {
	blobs := filepath.Join(s.root, "blobs")
	algs, err := os.ReadDir(blobs)
	if err != nil {
		return fmt.Errorf("list %q: %w", blobs, err)
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		dir := filepath.Join(blobs, alg.Name())
		ents, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("list %q: %w", dir, err)
		}
		for _, e := range ents {
			if err := ctx.Err(); err != nil {
				return err
			}
			dgst := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), e.Name())
			if !e.Type().IsRegular() || validateDigest(dgst) != nil {
				continue
			}
			fi, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted while walking
				}
				return fmt.Errorf("stat content %s: %w", dgst, err)
			}
			if err := fn(Info{Digest: dgst, Size: fi.Size(), CreatedAt: fi.ModTime()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete removes a committed blob, or returns an ErrNotFound error.
func (s *Store) Delete(ctx context.Context, dgst digest.Digest) error {
	if err := validateDigest(dgst); err != nil {
		return err
	}
	if err := os.Remove(s.Path(dgst)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("content %s: %w", dgst, errdefs.ErrNotFound)
		}
		return fmt.Errorf("delete content %s: %w", dgst, err)
	}
	return nil
}

// Verify re-reads a committed blob and checks that its content matches its
// digest. A mismatch is an ErrInvalidArgument error naming both digests.
func (s *Store) Verify(ctx context.Context, dgst digest.Digest) error {
	f, err := s.Open(ctx, dgst)
	if err != nil {
		return err
	}
	defer f.Close()
	v := dgst.Algorithm().Digester()
	if _, err := io.Copy(v.Hash(), &ctxReader{ctx: ctx, r: f}); err != nil {
		return fmt.Errorf("verify content %s: %w", dgst, err)
	}
	if got := v.Digest(); got != dgst {
		return fmt.Errorf("verify content %s: content has digest %s: %w", dgst, got, errdefs.ErrInvalidArgument)
	}
	return nil
}

// ctxReader stops a long copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// ingestDir returns the directory of the ingest named ref.
func (s *Store) ingestDir(ref string) string {
	h := sha256.Sum256([]byte(ref))
	return filepath.Join(s.root, "ingest", hex.EncodeToString(h[:]))
}

// Ingests lists the ingests on disk (committed or aborted ones are gone),
// sorted by ref.
func (s *Store) Ingests(ctx context.Context) ([]IngestInfo, error) {
	dir := filepath.Join(s.root, "ingest")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", dir, err)
	}
	var out []IngestInfo
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		info, err := readIngestInfo(filepath.Join(dir, e.Name()))
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue // committed or aborted meanwhile, or half created
			}
			return nil, err
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref < out[j].Ref })
	return out, nil
}

// IngestStatus returns the state of one ingest, or an ErrNotFound error.
func (s *Store) IngestStatus(ctx context.Context, ref string) (IngestInfo, error) {
	info, err := readIngestInfo(s.ingestDir(ref))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return IngestInfo{}, fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
		}
		return IngestInfo{}, err
	}
	return info, nil
}

// AbortIngest removes the ingest named ref. It returns an ErrNotFound error
// if there is none and an ErrUnavailable error if a Writer holds it.
func (s *Store) AbortIngest(ctx context.Context, ref string) error {
	dir := s.ingestDir(ref)
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("ingest %q: %w", ref, errdefs.ErrNotFound)
		}
		return fmt.Errorf("stat ingest %q: %w", ref, err)
	}
	unlock, err := lockIngest(dir, ref)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("remove ingest %q: %w", ref, err)
	}
	return nil
}
