package unpack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/archive"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// errLowerFailed ends a layer whose lower layer failed: it is not
// committed, and Unpack returns the lower layer's error.
var errLowerFailed = errors.New("a lower layer failed")

// parallel is one unpack of every layer at once, for a snapshotter that can
// commit a layer onto its parent after writing it (overlay).
//
// Each layer gets its own goroutine. Slots bound how many extract at once
// (GOMAXPROCS, at least 2); they are taken in layer order, before the
// layer's lock, and given back when its extraction ends, so a goroutine
// that waits for a lock or for the layers below never holds one another
// needs (the locks of concurrent unpacks of the same layers only ever wait
// for lower layers). A layer 1..n-1 is extracted, as archive.ApplyDetached,
// into a snapshot prepared with no parent; once the layer below is
// committed, the directories it created implicitly are given their lower
// directories' attributes and it is committed onto it (CommitOnto). Layer 0
// is extracted and committed as the sequential unpack does. A layer that
// needs its lower layers to be extracted (a hardlink into one) is extracted
// again, sequentially, once they are committed.
type parallel struct {
	cs      BlobOpener
	sn      snapshot.Snapshotter
	pc      snapshot.ParentCommitter
	layers  []ocispec.Descriptor
	diffIDs []digest.Digest
	chain   []digest.Digest
	opts    Options
	total   *usage

	slots chan struct{}
	done  []chan struct{} // closed when the layer is committed or failed
	errs  []error         // the layer's result, read after done
}

func unpackParallel(ctx context.Context, cs BlobOpener, sn snapshot.Snapshotter, pc snapshot.ParentCommitter, layers []ocispec.Descriptor, diffIDs, chain []digest.Digest, opts Options, total *usage) (string, error) {
	n := len(layers)
	p := &parallel{
		cs: cs, sn: sn, pc: pc, layers: layers, diffIDs: diffIDs, chain: chain, opts: opts, total: total,
		slots: make(chan struct{}, max(runtime.GOMAXPROCS(0), 2)),
		done:  make([]chan struct{}, n),
		errs:  make([]error, n),
	}
	ctxs := make([]context.Context, n)
	cancels := make([]context.CancelFunc, n)
	for i := range n {
		p.done[i] = make(chan struct{})
		ctxs[i], cancels[i] = context.WithCancel(ctx)
	}
	defer func() {
		for _, c := range cancels {
			c()
		}
	}()
	var wg sync.WaitGroup
	for i := range n {
		select {
		case p.slots <- struct{}{}:
		case <-ctx.Done():
			// Layers not started fail with the context's error.
			for j := i; j < n; j++ {
				p.errs[j] = fmt.Errorf("layer %d (%s): %w", j, layers[j].Digest, ctx.Err())
				close(p.done[j])
			}
			wg.Wait()
			return "", firstError(p.errs)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := p.layer(ctxs[i], i)
			if err != nil {
				// Nothing above a failed layer may be committed: stop
				// extracting it.
				for j := i + 1; j < n; j++ {
					cancels[j]()
				}
			}
			p.errs[i] = err
			close(p.done[i])
		}()
	}
	wg.Wait()
	if err := firstError(p.errs); err != nil {
		return "", err
	}
	return chain[n-1].String(), nil
}

// firstError is the error of the lowest layer that failed: the layers
// above it failed because of it.
func firstError(errs []error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// layer makes sure layer i is committed, holding one slot until its
// extraction ends.
func (p *parallel) layer(ctx context.Context, i int) error {
	slot := true
	release := func() {
		if slot {
			slot = false
			<-p.slots
		}
	}
	defer release()
	layer, id := p.layers[i], p.chain[i].String()
	unlock, err := layerLocks.lock(ctx, id)
	if err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	defer unlock()
	info, err := p.sn.Stat(ctx, id)
	switch {
	case err == nil && info.Kind == snapshot.KindCommitted:
		return nil // already unpacked, and so are the layers below it
	case err == nil:
		return fmt.Errorf("layer %d: snapshot %s exists but is %s: %w", i, id, info.Kind, errdefs.ErrFailedPrecondition)
	case !errors.Is(err, errdefs.ErrNotFound):
		return fmt.Errorf("layer %d: stat snapshot %s: %w", i, id, err)
	}
	if i == 0 {
		return applyLayer(ctx, p.cs, p.sn, 0, layer, p.diffIDs[0], id, "", p.opts, p.total)
	}
	ex, err := p.extract(ctx, i)
	release()
	if err != nil {
		return err
	}
	parent := p.chain[i-1].String()
	if ex == nil {
		// It needs its lower layers: apply it again once they are there.
		if err := p.waitLower(ctx, i); err != nil {
			return err
		}
		return applyLayer(ctx, p.cs, p.sn, i, layer, p.diffIDs[i], id, parent, p.opts, p.total)
	}
	err = p.commit(ctx, i, ex, id, parent)
	if err != nil {
		// Remove even when ctx is cancelled; the error that matters is err.
		_ = p.sn.Remove(context.WithoutCancel(ctx), ex.key)
	}
	return err
}

// waitLower waits until layer i-1 is committed.
func (p *parallel) waitLower(ctx context.Context, i int) error {
	select {
	case <-p.done[i-1]:
	case <-ctx.Done():
		return fmt.Errorf("layer %d (%s): %w", i, p.layers[i].Digest, ctx.Err())
	}
	if p.errs[i-1] != nil {
		return fmt.Errorf("layer %d (%s): %w", i, p.layers[i].Digest, errLowerFailed)
	}
	return nil
}

// commit fixes the extracted layer i up once its lower layers are
// committed and commits it onto parent.
func (p *parallel) commit(ctx context.Context, i int, ex *extracted, id, parent string) error {
	layer := p.layers[i]
	if err := p.waitLower(ctx, i); err != nil {
		return err
	}
	mounts, err := p.sn.Mounts(ctx, parent)
	if err != nil {
		return fmt.Errorf("layer %d (%s): lower layers: %w", i, layer.Digest, err)
	}
	lowers, err := lowerDirs(mounts)
	if err != nil {
		return fmt.Errorf("layer %d (%s): lower layers: %w", i, layer.Digest, err)
	}
	if err := ex.det.Fix(ex.dir, lowers); err != nil {
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	if err := p.pc.CommitOnto(ctx, id, ex.key, parent); err != nil {
		if errors.Is(err, errdefs.ErrAlreadyExists) {
			// Another unpack of the same layer (in another process) won
			// the race: use its snapshot.
			_ = p.sn.Remove(context.WithoutCancel(ctx), ex.key)
			return nil
		}
		return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err)
	}
	return nil
}

// extracted is a layer extracted into the active snapshot key (directory
// dir) with no parent, its diff ID checked.
type extracted struct {
	key, dir string
	det      *archive.Detached
}

// extract extracts layer i into a new snapshot without parent and checks
// its diff ID. It returns nil (and no error, leaving nothing behind) for a
// layer that needs its lower layers to be extracted.
func (p *parallel) extract(ctx context.Context, i int) (_ *extracted, retErr error) {
	layer, diffID := p.layers[i], p.diffIDs[i]
	wrap := func(err error) error { return fmt.Errorf("layer %d (%s): %w", i, layer.Digest, err) }
	// The blob first: opening it may wait for its download, and nothing
	// is prepared meanwhile.
	lr, hash, closeBlob, err := p.open(ctx, i)
	if err != nil {
		return nil, wrap(err)
	}
	defer closeBlob()
	key, err := extractKey(p.chain[i].String())
	if err != nil {
		return nil, err
	}
	mounts, err := prepare(ctx, p.sn, p.opts, key, "")
	if err != nil {
		return nil, wrap(err)
	}
	defer func() {
		if retErr != nil {
			_ = p.sn.Remove(context.WithoutCancel(ctx), key)
		}
	}()
	if len(mounts) != 1 || mounts[0].Type != "bind" {
		return nil, wrap(fmt.Errorf("a snapshot without parent has mounts %v, want one bind mount: %w", mounts, errdefs.ErrNotImplemented))
	}
	dir := mounts[0].Source
	_, det, err := archive.ApplyDetached(ctx, dir, io.TeeReader(lr, hash.Hash()), lr.charge)
	if errors.Is(err, archive.ErrNeedsLowers) {
		// Its bytes count once, when it is applied again.
		lr.uncount()
		if err := p.sn.Remove(context.WithoutCancel(ctx), key); err != nil {
			return nil, wrap(err)
		}
		return nil, nil
	}
	if err != nil {
		if lr.err != nil {
			err = lr.err
		}
		return nil, wrap(err)
	}
	if actual := hash.Digest(); actual != diffID {
		return nil, wrap(fmt.Errorf("uncompressed digest is %s, config.rootfs.diff_ids[%d] expects %s: %w", actual, i, diffID, errdefs.ErrInvalidArgument))
	}
	return &extracted{key: key, dir: dir, det: det}, nil
}

// open opens layer i's blob for reading, uncompressed and within the
// limits, with a digester of what is read.
func (p *parallel) open(ctx context.Context, i int) (*limitReader, digest.Digester, func(), error) {
	layer := p.layers[i]
	f, err := p.cs.Open(ctx, layer.Digest)
	if err != nil {
		return nil, nil, nil, err
	}
	rc, err := archive.Decompress(f)
	if err != nil {
		f.Close()
		return nil, nil, nil, err
	}
	compressed := layer.Size
	if st, err := f.Stat(); err == nil {
		compressed = st.Size()
	}
	lr := &limitReader{r: rc, lim: p.opts.Limits, compressed: compressed, image: p.total}
	return lr, p.diffIDs[i].Algorithm().Digester(), func() { rc.Close(); f.Close() }, nil
}

// lowerDirs returns the directories of a committed snapshot's layers,
// topmost first, from its mounts.
func lowerDirs(mounts []snapshot.Mount) ([]string, error) {
	if len(mounts) != 1 {
		return nil, fmt.Errorf("%d mounts: %w", len(mounts), errdefs.ErrNotImplemented)
	}
	m := mounts[0]
	switch m.Type {
	case "bind":
		return []string{m.Source}, nil
	case "overlay":
		for _, o := range m.Options {
			if v, ok := strings.CutPrefix(o, "lowerdir="); ok {
				return strings.Split(v, ":"), nil
			}
		}
		return nil, fmt.Errorf("an overlay mount without lowerdir: %w", errdefs.ErrInvalidArgument)
	}
	return nil, fmt.Errorf("a %q mount: %w", m.Type, errdefs.ErrNotImplemented)
}
