package unpack

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/archive"
	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// ChainIDs returns the chain ID of every layer as the image spec defines it:
// ChainID(L0) = DiffID(L0), ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln)).
func ChainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}

// BlobOpener is what Unpack reads layer blobs from: the content store, or
// a wrapper of it that waits until a blob is committed there (a pull that
// unpacks while it downloads). Open must return only verified blobs.
type BlobOpener interface {
	Open(ctx context.Context, dgst digest.Digest) (*os.File, error)
}

var _ BlobOpener = (*content.Store)(nil)

// Options tune UnpackFrom.
type Options struct {
	// Limits bound what the layers may expand to (zero: the defaults).
	Limits Limits
	// Lease, when set, is called with the key of every active snapshot
	// before Unpack prepares it, so that the caller can protect it from a
	// garbage collection running meanwhile. An error fails the layer.
	Lease func(ctx context.Context, key string) error
}

// Unpack applies every layer of the image onto committed snapshots named by
// chain ID, skipping those that exist, checks each layer's uncompressed
// digest against config.rootfs.diff_ids, and returns the top chain ID ("" for
// an image without layers). A layer that fails leaves no snapshot behind;
// those below it stay (they are valid and shared).
// Layers expand within the default Limits.
func Unpack(ctx context.Context, cs *content.Store, sn snapshot.Snapshotter, manifest ocispec.Manifest, config ocispec.Image) (string, error) {
	return unpack(ctx, cs, sn, manifest.Layers, config.RootFS, Options{})
}

// UnpackWithLimits is Unpack with bounds on the uncompressed size of the
// layers: a layer that expands past them fails (ErrInvalidArgument, naming
// the layer and the limit) and leaves no snapshot.
func UnpackWithLimits(ctx context.Context, cs *content.Store, sn snapshot.Snapshotter, manifest ocispec.Manifest, config ocispec.Image, lim Limits) (string, error) {
	return unpack(ctx, cs, sn, manifest.Layers, config.RootFS, Options{Limits: lim})
}

// UnpackFrom is UnpackWithLimits reading the layer blobs from blobs. A
// layer's blob is opened when the layer is about to be extracted (in layer
// order, a few at once on overlay), before its snapshot is prepared: an Open
// that waits for a download leaves no snapshot behind while it waits, and a
// layer that is already unpacked is never opened.
func UnpackFrom(ctx context.Context, blobs BlobOpener, sn snapshot.Snapshotter, manifest ocispec.Manifest, config ocispec.Image, opts Options) (string, error) {
	return unpack(ctx, blobs, sn, manifest.Layers, config.RootFS, opts)
}

func unpack(ctx context.Context, cs BlobOpener, sn snapshot.Snapshotter, layers []ocispec.Descriptor, rootfs ocispec.RootFS, opts Options) (string, error) {
	opts.Limits = opts.Limits.withDefaults()
	var total usage
	if rootfs.Type != "layers" {
		return "", fmt.Errorf("config.rootfs.type %q, want \"layers\": %w", rootfs.Type, errdefs.ErrInvalidArgument)
	}
	if len(layers) != len(rootfs.DiffIDs) {
		return "", fmt.Errorf("manifest has %d layers, config.rootfs.diff_ids has %d: %w", len(layers), len(rootfs.DiffIDs), errdefs.ErrInvalidArgument)
	}
	for i, d := range rootfs.DiffIDs {
		if err := d.Validate(); err != nil {
			return "", fmt.Errorf("config.rootfs.diff_ids[%d] %q: %w: %w", i, d, errdefs.ErrInvalidArgument, err)
		}
	}
	chain := ChainIDs(rootfs.DiffIDs)
	if pc, ok := sn.(snapshot.ParentCommitter); ok && len(layers) > 1 {
		return unpackParallel(ctx, cs, sn, pc, layers, rootfs.DiffIDs, chain, opts, &total)
	}
	parent := ""
	for i, layer := range layers {
		id := chain[i].String()
		unlock, err := layerLocks.lock(ctx, id)
		if err != nil {
			return "", fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
		}
		err = unpackOne(ctx, cs, sn, i, layer, rootfs.DiffIDs[i], id, parent, opts, &total)
		unlock()
		if err != nil {
			return "", err
		}
		parent = id
	}
	return parent, nil
}

// unpackOne makes sure the committed snapshot id exists, unpacking layer i
// onto parent if it does not. The caller holds the layer's lock.
func unpackOne(ctx context.Context, cs BlobOpener, sn snapshot.Snapshotter, i int, layer ocispec.Descriptor, diffID digest.Digest, id, parent string, opts Options, total *usage) error {
	info, err := sn.Stat(ctx, id)
	switch {
	case err == nil && info.Kind == snapshot.KindCommitted:
		return nil // already unpacked (by this image or another sharing the layer)
	case err == nil:
		return fmt.Errorf("layer %d: snapshot %s exists but is %s: %w", i, id, info.Kind, errdefs.ErrFailedPrecondition)
	case errors.Is(err, errdefs.ErrNotFound):
		return applyLayer(ctx, cs, sn, i, layer, diffID, id, parent, opts, total)
	default:
		return fmt.Errorf("layer %d: stat snapshot %s: %w", i, id, err)
	}
}

func applyLayer(ctx context.Context, cs BlobOpener, sn snapshot.Snapshotter, i int, layer ocispec.Descriptor, diffID digest.Digest, id, parent string, opts Options, total *usage) (retErr error) {
	// The blob first: opening it may wait for its download, and nothing
	// is prepared meanwhile.
	f, err := cs.Open(ctx, layer.Digest)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	defer f.Close()
	key, err := extractKey(id)
	if err != nil {
		return err
	}
	mounts, err := prepare(ctx, sn, opts, key, parent)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	defer func() {
		if retErr != nil {
			// Remove even when ctx is cancelled; the error that matters is retErr.
			_ = sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	dir, aopts, err := applyTarget(mounts)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	rc, err := archive.Decompress(f)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	defer rc.Close()
	compressed := layer.Size
	if st, err := f.Stat(); err == nil {
		compressed = st.Size()
	}
	lr := &limitReader{r: rc, lim: opts.Limits, compressed: compressed, image: total}
	aopts.Charge = lr.charge
	digester := diffID.Algorithm().Digester()
	if _, err := archive.Apply(ctx, dir, io.TeeReader(lr, digester.Hash()), aopts); err != nil {
		if lr.err != nil {
			err = lr.err
		}
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	if actual := digester.Digest(); actual != diffID {
		return fmt.Errorf("layer %d (%s): uncompressed digest is %s, config.rootfs.diff_ids[%d] expects %s: %w", i, layer.Digest, actual, i, diffID, errdefs.ErrInvalidArgument)
	}
	if err := sn.Commit(ctx, id, key); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			// Another unpack of the same layer won the race: use its snapshot.
			_ = sn.Remove(context.WithoutCancel(ctx), key)
			return nil
		}
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	return nil
}

// prepare leases the active snapshot key (Options.Lease) and prepares it
// on parent.
func prepare(ctx context.Context, sn snapshot.Snapshotter, opts Options, key, parent string) ([]snapshot.Mount, error) {
	if opts.Lease != nil {
		if err := opts.Lease(ctx, key); err != nil {
			return nil, fmt.Errorf("lease snapshot %s: %w", key, err)
		}
	}
	return sn.Prepare(ctx, key, parent)
}

// extractKey names the active snapshot a layer is extracted into.
func extractKey(id string) (string, error) {
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", err
	}
	return fmt.Sprintf("extract-%s-%s", hex.EncodeToString(rnd[:]), id), nil
}

// applyTarget picks the directory to extract into from an active snapshot's
// mounts, without mounting: the upper directory of an overlay (whiteouts in
// overlay form, its lower directories as parents), or a bind mount's source
// (whiteouts as deletions).
func applyTarget(mounts []snapshot.Mount) (string, archive.ApplyOptions, error) {
	if len(mounts) != 1 {
		return "", archive.ApplyOptions{}, fmt.Errorf("unpack into %d mounts: %w", len(mounts), errdefs.ErrNotImplemented)
	}
	m := mounts[0]
	switch m.Type {
	case "bind":
		return m.Source, archive.ApplyOptions{Whiteouts: archive.WhiteoutRemove}, nil
	case "overlay":
		var upper string
		var lowers []string
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "upperdir="); ok {
				upper = v
			}
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				lowers = strings.Split(v, ":")
			}
		}
		if upper == "" {
			return "", archive.ApplyOptions{}, fmt.Errorf("unpack into an overlay mount without upperdir: %w", errdefs.ErrInvalidArgument)
		}
		return upper, archive.ApplyOptions{Whiteouts: archive.WhiteoutOverlay, Parents: lowers}, nil
	}
	return "", archive.ApplyOptions{}, fmt.Errorf("unpack into a %q mount: %w", m.Type, errdefs.ErrNotImplemented)
}
