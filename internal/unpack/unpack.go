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
	"sync/atomic"

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

// blobOpener is what Unpack needs of the content store.
type blobOpener interface {
	Open(ctx context.Context, dgst digest.Digest) (*os.File, error)
}

var _ blobOpener = (*content.Store)(nil)

// Unpack applies every layer of the image onto committed snapshots named by
// chain ID, skipping those that exist, checks each layer's uncompressed
// digest against config.rootfs.diff_ids, and returns the top chain ID ("" for
// an image without layers). A layer that fails leaves no snapshot behind;
// those below it stay (they are valid and shared).
// Layers expand within the default Limits.
func Unpack(ctx context.Context, cs *content.Store, sn snapshot.Snapshotter, manifest ocispec.Manifest, config ocispec.Image) (string, error) {
	return unpack(ctx, cs, sn, manifest.Layers, config.RootFS, Limits{})
}

// UnpackWithLimits is Unpack with bounds on the uncompressed size of the
// layers: a layer that expands past them fails (ErrInvalidArgument, naming
// the layer and the limit) and leaves no snapshot.
func UnpackWithLimits(ctx context.Context, cs *content.Store, sn snapshot.Snapshotter, manifest ocispec.Manifest, config ocispec.Image, lim Limits) (string, error) {
	return unpack(ctx, cs, sn, manifest.Layers, config.RootFS, lim)
}

func unpack(ctx context.Context, cs blobOpener, sn snapshot.Snapshotter, layers []ocispec.Descriptor, rootfs ocispec.RootFS, lim Limits) (string, error) {
	lim = lim.withDefaults()
	var total atomic.Int64
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
		return unpackParallel(ctx, cs, sn, pc, layers, rootfs.DiffIDs, chain, lim, &total)
	}
	parent := ""
	for i, layer := range layers {
		id := chain[i].String()
		unlock, err := layerLocks.lock(ctx, id)
		if err != nil {
			return "", fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
		}
		err = unpackOne(ctx, cs, sn, i, layer, rootfs.DiffIDs[i], id, parent, lim, &total)
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
func unpackOne(ctx context.Context, cs blobOpener, sn snapshot.Snapshotter, i int, layer ocispec.Descriptor, diffID digest.Digest, id, parent string, lim Limits, total *atomic.Int64) error {
	info, err := sn.Stat(ctx, id)
	switch {
	case err == nil && info.Kind == snapshot.KindCommitted:
		return nil // already unpacked (by this image or another sharing the layer)
	case err == nil:
		return fmt.Errorf("layer %d: snapshot %s exists but is %s: %w", i, id, info.Kind, errdefs.ErrFailedPrecondition)
	case errors.Is(err, errdefs.ErrNotFound):
		return applyLayer(ctx, cs, sn, i, layer, diffID, id, parent, lim, total)
	default:
		return fmt.Errorf("layer %d: stat snapshot %s: %w", i, id, err)
	}
}

func applyLayer(ctx context.Context, cs blobOpener, sn snapshot.Snapshotter, i int, layer ocispec.Descriptor, diffID digest.Digest, id, parent string, lim Limits, total *atomic.Int64) (retErr error) {
	key, err := extractKey(id)
	if err != nil {
		return err
	}
	mounts, err := sn.Prepare(ctx, key, parent)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	defer func() {
		if retErr != nil {
			// Remove even when ctx is cancelled; the error that matters is retErr.
			_ = sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	dir, opts, err := applyTarget(mounts)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	f, err := cs.Open(ctx, layer.Digest)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	defer f.Close()
	rc, err := archive.Decompress(f)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	defer rc.Close()
	compressed := layer.Size
	if st, err := f.Stat(); err == nil {
		compressed = st.Size()
	}
	lr := &limitReader{r: rc, lim: lim, compressed: compressed, image: total}
	digester := diffID.Algorithm().Digester()
	if _, err := archive.Apply(ctx, dir, io.TeeReader(lr, digester.Hash()), opts); err != nil {
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
