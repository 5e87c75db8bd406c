package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// Options tune Pull.
type Options struct {
	// Hosts holds the mirrors per registry host; nil means none.
	Hosts *Hosts
	// Insecure lists hosts (host or host:port) that may be reached over
	// plain HTTP; loopback hosts always may.
	Insecure []string
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// Credentials returns the user and password for a registry host
	// ("docker.io" for Docker Hub); empty strings mean anonymous.
	Credentials func(host string) (user, pass string, err error)
	// Platform to pick from an index; the zero value means the host's
	// (DefaultPlatform).
	Platform ocispec.Platform
	// Progress, when set, is called (never concurrently) as blobs download;
	// a blob is reported Done once it is committed (verified) in the store.
	Progress func(Progress)
	// Lease, when set, is called with the digest of every blob (index,
	// manifest, config, layer) before Pull looks it up in the store or
	// writes it there, so that the caller can protect it from a garbage
	// collection running meanwhile (a manifest is not reported through
	// Progress). An error fails the pull.
	Lease func(ctx context.Context, dgst digest.Digest) error
	// OnManifest, when set, is called once the manifest and the config are
	// fetched and checked (the config has one diff_id per layer), before
	// any layer is, with the target descriptor and the manifest and config
	// Pull chose; the layers download after it returns. A caller can start
	// unpacking then, opening each layer once Progress reports it Done. An
	// error fails the pull.
	OnManifest func(ctx context.Context, target ocispec.Descriptor, manifest ocispec.Manifest, config ocispec.Image) error
	// MaxConcurrent bounds the layers downloaded at once (default 3).
	MaxConcurrent int
	// MaxRetries bounds the retries of one request after a network error,
	// a cut download or a 429/5xx answer (default 4); backoff doubles from
	// 250ms up to 8s.
	MaxRetries int
	// IdleTimeout abandons a request that receives nothing (no answer, or
	// no body bytes) for this long; it is retried like a cut download
	// (default DefaultIdleTimeout). A slow but steady download never times
	// out.
	IdleTimeout time.Duration
}

// Progress reports a blob's download.
type Progress struct {
	Ref    string
	Digest digest.Digest
	// MediaType of the blob (added to the contract: lets a UI tell layers
	// from configs).
	MediaType string
	Total     int64
	Offset    int64
	Done      bool
	Err       error
}

// Size bounds for what is read into memory.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 32 << 20
)

// Media types Pull understands.
const (
	MediaTypeDockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig       = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	MediaTypeDockerLayerZstd    = "application/vnd.docker.image.rootfs.diff.tar.zstd"
	MediaTypeDockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
)

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageIndex, ocispec.MediaTypeImageManifest,
	MediaTypeDockerManifestList, MediaTypeDockerManifest,
}, ", ")

// IsIndex reports whether mt is an OCI index or a Docker manifest list.
func IsIndex(mt string) bool {
	return mt == ocispec.MediaTypeImageIndex || mt == MediaTypeDockerManifestList
}

// IsManifest reports whether mt is an OCI or Docker schema 2 manifest.
func IsManifest(mt string) bool {
	return mt == ocispec.MediaTypeImageManifest || mt == MediaTypeDockerManifest
}

// IsLayer reports whether mt is a layer media type unpack can apply.
func IsLayer(mt string) bool {
	switch mt {
	case ocispec.MediaTypeImageLayer, ocispec.MediaTypeImageLayerGzip, ocispec.MediaTypeImageLayerZstd,
		ocispec.MediaTypeImageLayerNonDistributable, ocispec.MediaTypeImageLayerNonDistributableGzip, //nolint:staticcheck // still seen in the wild
		ocispec.MediaTypeImageLayerNonDistributableZstd, //nolint:staticcheck // still seen in the wild
		MediaTypeDockerLayerGzip, MediaTypeDockerLayerZstd, MediaTypeDockerLayer:
		return true
	}
	return false
}

// puller is the state of one Pull.
type puller struct {
	cs   *content.Store
	opts Options
	ref  Reference
	eps  []Endpoint

	mu      sync.Mutex
	clients map[int]*client
	dead    map[int]error

	progMu sync.Mutex
}

// Pull resolves ref, picks the platform from an index, fetches index,
// manifest, config and layers into cs (layers in parallel, Range resume,
// bounded retries), and returns the image's target descriptor (what the
// reference names: an index or a manifest) and the manifest and config it
// chose. Blobs already in cs are not downloaded again.
func Pull(ctx context.Context, cs *content.Store, ref string, opts Options) (ocispec.Descriptor, ocispec.Manifest, ocispec.Image, error) {
	var zd ocispec.Descriptor
	r, err := ParseReference(ref)
	if err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, err
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 3
	}
	if opts.MaxRetries <= 0 {
		opts.MaxRetries = 4
	}
	if opts.Platform.OS == "" {
		opts.Platform = DefaultPlatform()
	}
	p := &puller{cs: cs, opts: opts, ref: r, eps: opts.Hosts.Endpoints(r.Host), clients: map[int]*client{}, dead: map[int]error{}}
	target, m, cfg, err := p.pull(ctx)
	if err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("pull %s: %w", r, err)
	}
	return target, m, cfg, nil
}

func (p *puller) pull(ctx context.Context) (ocispec.Descriptor, ocispec.Manifest, ocispec.Image, error) {
	var zd ocispec.Descriptor
	target, body, err := p.resolve(ctx)
	if err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, err
	}
	if err := p.put(ctx, target, body); err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, err
	}
	desc := target
	for depth := 0; IsIndex(desc.MediaType); depth++ {
		if depth > 3 {
			return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("index %s: nested more than 3 deep: %w", desc.Digest, errdefs.ErrInvalidArgument)
		}
		var idx ocispec.Index
		if err := json.Unmarshal(body, &idx); err != nil {
			return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("parse index %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
		}
		child, err := SelectPlatform(idx, p.opts.Platform)
		if err != nil {
			return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("index %s: %w", desc.Digest, err)
		}
		if body, err = p.manifestByDigest(ctx, child); err != nil {
			return zd, ocispec.Manifest{}, ocispec.Image{}, err
		}
		desc = child
	}
	if !IsManifest(desc.MediaType) {
		return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("manifest %s: media type %q unsupported: %w", desc.Digest, desc.MediaType, errdefs.ErrNotImplemented)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(body, &m); err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("parse manifest %s: %w: %w", desc.Digest, err, errdefs.ErrInvalidArgument)
	}
	if m.MediaType == "" {
		m.MediaType = desc.MediaType
	}
	if err := checkManifest(desc.Digest, m); err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, err
	}
	if err := p.fetchBlob(ctx, m.Config); err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, err
	}
	cb, err := p.cs.ReadAll(ctx, m.Config.Digest, MaxConfigSize)
	if err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	var cfg ocispec.Image
	if err := json.Unmarshal(cb, &cfg); err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("parse config %s: %w: %w", m.Config.Digest, err, errdefs.ErrInvalidArgument)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("config %s: %d diff_ids for %d layers: %w", m.Config.Digest, len(cfg.RootFS.DiffIDs), len(m.Layers), errdefs.ErrInvalidArgument)
	}
	if p.opts.OnManifest != nil {
		if err := p.opts.OnManifest(ctx, target, m, cfg); err != nil {
			return zd, ocispec.Manifest{}, ocispec.Image{}, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(p.opts.MaxConcurrent)
	for _, l := range m.Layers {
		g.Go(func() error { return p.fetchBlob(gctx, l) })
	}
	if err := g.Wait(); err != nil {
		return zd, ocispec.Manifest{}, ocispec.Image{}, err
	}
	return target, m, cfg, nil
}

func checkManifest(d digest.Digest, m ocispec.Manifest) error {
	if m.Config.Digest.Validate() != nil || m.Config.Size < 0 || m.Config.Size > MaxConfigSize {
		return fmt.Errorf("manifest %s: config descriptor %q (%d bytes) invalid: %w", d, m.Config.Digest, m.Config.Size, errdefs.ErrInvalidArgument)
	}
	switch m.Config.MediaType {
	case ocispec.MediaTypeImageConfig, MediaTypeDockerConfig:
	default:
		return fmt.Errorf("manifest %s: config %s: media type %q is not an image config: %w", d, m.Config.Digest, m.Config.MediaType, errdefs.ErrNotImplemented)
	}
	for i, l := range m.Layers {
		if err := l.Digest.Validate(); err != nil || l.Size < 0 {
			return fmt.Errorf("manifest %s: layers[%d] descriptor %q invalid: %w", d, i, l.Digest, errdefs.ErrInvalidArgument)
		}
		if !IsLayer(l.MediaType) {
			return fmt.Errorf("manifest %s: layer %s: media type %q unsupported: %w", d, l.Digest, l.MediaType, errdefs.ErrNotImplemented)
		}
	}
	return nil
}

// client returns the client of endpoint i, creating it on first use; an
// endpoint that failed once is skipped for the rest of the pull.
func (p *puller) client(ctx context.Context, i int) (*client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[i]; ok {
		return c, nil
	}
	if err, ok := p.dead[i]; ok {
		return nil, err
	}
	c, err := p.opts.newClient(ctx, p.eps[i], p.ref.Repository)
	if err != nil {
		if ctx.Err() == nil {
			p.dead[i] = err
		}
		return nil, err
	}
	p.clients[i] = c
	return c, nil
}

// each runs fn on every endpoint with capability cap in order until one
// succeeds; the error names every endpoint's failure.
func (p *puller) each(ctx context.Context, capability string, fn func(c *client) error) error {
	var errs []error
	for i, ep := range p.eps {
		if !ep.Can(capability) {
			continue
		}
		c, err := p.client(ctx, i)
		if err == nil {
			err = fn(c)
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		kind := "origin"
		if ep.Mirror {
			kind = "mirror"
		}
		errs = append(errs, fmt.Errorf("%s %s: %w", kind, ep.URL.Host, err))
	}
	if len(errs) == 0 {
		return fmt.Errorf("no endpoint of %s can %s: %w", p.ref.Host, capability, errdefs.ErrFailedPrecondition)
	}
	if len(errs) == 1 {
		return errs[0]
	}
	return joinedError(errs)
}

// joinedError is the failures of several endpoints on one line; errors.Is
// and errors.As see each of them.
type joinedError []error

func (j joinedError) Error() string {
	parts := make([]string, len(j))
	for i, e := range j {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

func (j joinedError) Unwrap() []error { return j }

// resolve fetches the manifest (or index) the reference names.
func (p *puller) resolve(ctx context.Context) (ocispec.Descriptor, []byte, error) {
	var desc ocispec.Descriptor
	var body []byte
	capability, what := CapabilityResolve, p.ref.Tag
	if p.ref.Digest != "" {
		capability, what = CapabilityPull, string(p.ref.Digest)
	}
	err := p.each(ctx, capability, func(c *client) error {
		var err error
		desc, body, err = p.withRetry(ctx, func() (ocispec.Descriptor, []byte, error) {
			return c.manifest(ctx, what, ocispec.Descriptor{Digest: p.ref.Digest})
		})
		return err
	})
	return desc, body, err
}

// manifestByDigest returns the manifest desc from cs, or fetches and stores
// it; either way the body must be of desc's kind (see DocumentType).
func (p *puller) manifestByDigest(ctx context.Context, desc ocispec.Descriptor) ([]byte, error) {
	if desc.Size > MaxManifestSize {
		return nil, fmt.Errorf("manifest %s: %d bytes, more than %d: %w", desc.Digest, desc.Size, MaxManifestSize, errdefs.ErrInvalidArgument)
	}
	if err := p.lease(ctx, desc.Digest); err != nil {
		return nil, err
	}
	if b, err := p.cs.ReadAll(ctx, desc.Digest, MaxManifestSize); err == nil {
		if _, err := DocumentType(b, desc.MediaType); err != nil {
			return nil, fmt.Errorf("manifest %s: %w", desc.Digest, err)
		}
		return b, nil
	}
	var body []byte
	err := p.each(ctx, CapabilityPull, func(c *client) error {
		var err error
		_, body, err = p.withRetry(ctx, func() (ocispec.Descriptor, []byte, error) {
			return c.manifest(ctx, string(desc.Digest), desc)
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	return body, p.put(ctx, desc, body)
}

// put stores a verified in-memory blob.
func (p *puller) put(ctx context.Context, desc ocispec.Descriptor, body []byte) error {
	if err := p.lease(ctx, desc.Digest); err != nil {
		return err
	}
	return p.cs.Fetch(ctx, ocispec.Descriptor{MediaType: desc.MediaType, Digest: desc.Digest, Size: int64(len(body))}, func(w *content.Writer) error {
		if w.Offset() > 0 {
			if err := w.Truncate(0); err != nil {
				return err
			}
		}
		_, err := w.Write(body)
		return err
	})
}

// lease calls Options.Lease for dgst, if set.
func (p *puller) lease(ctx context.Context, dgst digest.Digest) error {
	if p.opts.Lease == nil {
		return nil
	}
	if err := p.opts.Lease(ctx, dgst); err != nil {
		return fmt.Errorf("lease %s: %w", dgst, err)
	}
	return nil
}

func (p *puller) withRetry(ctx context.Context, fn func() (ocispec.Descriptor, []byte, error)) (ocispec.Descriptor, []byte, error) {
	for attempt := 0; ; attempt++ {
		d, b, err := fn()
		if err == nil {
			return d, b, nil
		}
		after, ok := isRetryable(err)
		if !ok || attempt >= p.opts.MaxRetries {
			return d, b, err
		}
		if err := sleep(ctx, backoff(attempt, after)); err != nil {
			return d, b, err
		}
	}
}

func backoff(attempt int, after time.Duration) time.Duration {
	if after > 0 {
		return after
	}
	d := 250 * time.Millisecond << attempt
	d = min(d, 8*time.Second)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// manifest GETs /v2/<repo>/manifests/<what>. When want.Digest is set the
// body must have that digest (and want.Size, if set).
func (c *client) manifest(ctx context.Context, what string, want ocispec.Descriptor) (ocispec.Descriptor, []byte, error) {
	u := fmt.Sprintf("%s/v2/%s/manifests/%s", c.base, c.repo, what)
	rctx, kick, stop := idleCtx(ctx, c.idle)
	defer stop()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ocispec.Descriptor{}, nil, ctx.Err()
		}
		return ocispec.Descriptor{}, nil, &retryable{fmt.Errorf("manifest %s from %s: %w", what, c.base, idleErr(ctx, rctx, err)), 0}
	}
	defer resp.Body.Close()
	kick()
	if resp.StatusCode != http.StatusOK {
		return ocispec.Descriptor{}, nil, c.statusError(resp, "manifest "+what)
	}
	body, err := io.ReadAll(io.LimitReader(&kickReader{r: resp.Body, kick: kick}, MaxManifestSize+1))
	if err != nil {
		if ctx.Err() != nil {
			return ocispec.Descriptor{}, nil, ctx.Err()
		}
		return ocispec.Descriptor{}, nil, &retryable{fmt.Errorf("manifest %s from %s: %w", what, c.base, idleErr(ctx, rctx, err)), 0}
	}
	if len(body) > MaxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s from %s: larger than %d bytes: %w", what, c.base, MaxManifestSize, errdefs.ErrInvalidArgument)
	}
	got := digest.FromBytes(body)
	if want.Digest != "" && got != want.Digest {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s from %s: content has digest %s, expected %s: %w", what, c.base, got, want.Digest, errdefs.ErrInvalidArgument)
	}
	if want.Size > 0 && int64(len(body)) != want.Size {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s from %s: %d bytes, expected %d: %w", what, c.base, len(body), want.Size, errdefs.ErrInvalidArgument)
	}
	if h := resp.Header.Get("Docker-Content-Digest"); h != "" && want.Digest == "" && h != string(got) {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s from %s: content has digest %s, registry says %s: %w", what, c.base, got, h, errdefs.ErrInvalidArgument)
	}
	// The kind comes from the body, which the digest covers; the
	// Content-Type and the index entry that named it must agree.
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	mt, err := DocumentType(body, strings.TrimSpace(ct), want.MediaType)
	if err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("manifest %s (%s) from %s: %w", what, got, c.base, err)
	}
	return ocispec.Descriptor{MediaType: mt, Digest: got, Size: int64(len(body))}, body, nil
}
