package services

import (
	"context"
	"io"
	"os"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/content"
)

// Image is one named image of a namespace.
type Image struct {
	Name      string
	Target    ocispec.Descriptor
	CreatedAt time.Time
	UpdatedAt time.Time
	Labels    map[string]string
	// Size is the sum of the sizes of every blob the image references.
	Size int64
}

// ImageDetail is an image with the manifest and config chosen for the
// daemon's platform, as raw JSON (what inspect shows).
type ImageDetail struct {
	Image
	ManifestDescriptor ocispec.Descriptor
	Manifest           []byte
	Config             []byte
}

// Progress tells where one blob of a pull stands. Exists is set for a blob
// that was already in the store, Done once it is complete.
type Progress struct {
	Ref    string
	Digest digest.Digest
	Total  int64
	Offset int64
	Done   bool
	Exists bool
	Err    error
}

// PullEvent is either a blob's progress or the name of a stage of the pull
// ("resolving", "unpacking").
type PullEvent struct {
	Stage    string
	Progress *Progress
}

// Images is what the image service needs from the image store. Every call
// names the namespace; implementations return errdefs kinds (ErrNotFound
// for a missing image, ErrInvalidArgument for a bad reference, ...).
//
// Pull calls progress from any goroutine until it returns; the callback must
// not block for long. Delete removes a name and then collects the garbage it
// left, returning the bytes that collection freed; without force it refuses
// (ErrFailedPrecondition) while a container uses the name.
type Images interface {
	Pull(ctx context.Context, ns, ref string, platform *ocispec.Platform, progress func(PullEvent)) (Image, error)
	List(ctx context.Context, ns string) ([]Image, error)
	Get(ctx context.Context, ns, name string) (ImageDetail, error)
	Delete(ctx context.Context, ns, name string, force bool) (reclaimed int64, err error)
	Tag(ctx context.Context, ns, source, target string) (Image, error)
	Import(ctx context.Context, ns string, r io.Reader, name string) ([]Image, error)
	Export(ctx context.Context, ns string, names []string, format string, w io.Writer) error
}

// ImageUsage is the disk one image takes: Size counts every blob and
// snapshot it references, UniqueSize only those no other image shares.
type ImageUsage struct {
	Name       string
	Size       int64
	UniqueSize int64
}

// BlobUsage is one blob of the content store.
type BlobUsage struct {
	Digest     digest.Digest
	Size       int64
	Referenced bool
}

// SnapshotUsage is one snapshot's own disk use.
type SnapshotUsage struct {
	Key        string
	Size       int64
	Inodes     int64
	Referenced bool
}

// DiskUsage is the daemon's disk use, exact to the byte.
type DiskUsage struct {
	Images           []ImageUsage
	Blobs            []BlobUsage
	Snapshots        []SnapshotUsage
	ContentBytes     int64
	SnapshotBytes    int64
	ReclaimableBytes int64
}

// PruneReport lists what a garbage collection removed.
type PruneReport struct {
	RemovedBlobs     []digest.Digest
	RemovedSnapshots []string
	ReclaimedBytes   int64
}

// Problem is one finding of a check: Kind is "blob", "ingest", "snapshot"
// or "mount", Subject the digest, ref, key or path.
type Problem struct {
	Kind    string
	Subject string
	Message string
}

// CheckReport is the result of verifying the store.
type CheckReport struct {
	BlobsChecked     int64
	SnapshotsChecked int64
	Problems         []Problem
}

// Maintenance is what the system service needs: disk usage (images of the
// namespace ns, blobs and snapshots of the whole daemon), garbage
// collection and a consistency check.
type Maintenance interface {
	DiskUsage(ctx context.Context, ns string) (DiskUsage, error)
	Prune(ctx context.Context, all bool) (PruneReport, error)
	Check(ctx context.Context) (CheckReport, error)
}

// Content is the read-only part of the content store the content service
// serves; *content.Store satisfies it.
type Content interface {
	Info(ctx context.Context, dgst digest.Digest) (content.Info, error)
	Open(ctx context.Context, dgst digest.Digest) (*os.File, error)
	Walk(ctx context.Context, fn func(content.Info) error) error
}

var _ Content = (*content.Store)(nil)
