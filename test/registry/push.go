package registry

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/opencontainers/go-digest"
)

// Pusher pushes images to a registry with the OCI distribution API: each
// blob the registry lacks (HEAD) is uploaded in one piece (POST
// /v2/<name>/blobs/uploads/, then PUT to the Location with ?digest=), then
// the manifests are PUT with their media type as Content-Type.
type Pusher struct {
	// BaseURL is the registry's scheme and host ("http://127.0.0.1:5000").
	BaseURL string
	// Client sends the requests (http.DefaultClient when nil); for a TLS
	// registry it must trust the registry's CA.
	Client *http.Client
	// User and Password, when User is set, go with every request as basic
	// auth.
	User, Password string
}

// Pusher returns a Pusher for r with r's credentials and a client that
// trusts its CA.
func (r *Registry) Pusher() *Pusher {
	return &Pusher{BaseURL: r.URL(), Client: r.Client(), User: r.User, Password: r.Password}
}

// SplitNameTag splits "repo:tag" (a tag after the last '/'; "latest" when
// none) into the repository and the tag.
func SplitNameTag(nameTag string) (repo, tag string, err error) {
	repo, tag = nameTag, "latest"
	if i := strings.LastIndexByte(nameTag, ':'); i > strings.LastIndexByte(nameTag, '/') {
		repo, tag = nameTag[:i], nameTag[i+1:]
	}
	if repo == "" || tag == "" {
		return "", "", fmt.Errorf("image name %q: want repo:tag", nameTag)
	}
	return repo, tag, nil
}

// PushImage pushes img's layers, config and manifest to repo, tagged tag.
func (p *Pusher) PushImage(ctx context.Context, repo, tag string, img *Image) error {
	if err := p.pushImageBlobs(ctx, repo, img); err != nil {
		return fmt.Errorf("push %s:%s: %w", repo, tag, err)
	}
	if err := p.pushManifest(ctx, repo, tag, img.MediaType, img.ManifestJSON, img.Digest); err != nil {
		return fmt.Errorf("push %s:%s: %w", repo, tag, err)
	}
	return nil
}

// PushIndex pushes every image of idx (manifests by digest) and then the
// index to repo, tagged tag.
func (p *Pusher) PushIndex(ctx context.Context, repo, tag string, idx *Index) error {
	for _, img := range idx.Images {
		if err := p.pushImageBlobs(ctx, repo, img); err != nil {
			return fmt.Errorf("push %s:%s: %w", repo, tag, err)
		}
		if err := p.pushManifest(ctx, repo, img.Digest.String(), img.MediaType, img.ManifestJSON, img.Digest); err != nil {
			return fmt.Errorf("push %s:%s: %w", repo, tag, err)
		}
	}
	if err := p.pushManifest(ctx, repo, tag, idx.MediaType, idx.IndexJSON, idx.Digest); err != nil {
		return fmt.Errorf("push %s:%s: %w", repo, tag, err)
	}
	return nil
}

func (p *Pusher) pushImageBlobs(ctx context.Context, repo string, img *Image) error {
	for _, l := range img.Layers {
		if err := p.pushBlob(ctx, repo, l.Digest, l.Size, l.Compressed); err != nil {
			return err
		}
	}
	cfg := img.ConfigJSON
	return p.pushBlob(ctx, repo, img.Manifest.Config.Digest, int64(len(cfg)), func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(cfg)), nil
	})
}

func (p *Pusher) client() *http.Client {
	if p.Client != nil {
		return p.Client
	}
	return http.DefaultClient
}

// do sends req with the credentials and returns the response; the caller
// closes its body.
func (p *Pusher) do(req *http.Request) (*http.Response, error) {
	if p.User != "" {
		req.SetBasicAuth(p.User, p.Password)
	}
	return p.client().Do(req)
}

// statusError describes an unexpected answer, with the start of its body.
func statusError(resp *http.Response) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
	return fmt.Errorf("%s %s: status %s: %s", resp.Request.Method, resp.Request.URL.Redacted(), resp.Status, bytes.TrimSpace(body))
}

func (p *Pusher) pushBlob(ctx context.Context, repo string, d digest.Digest, size int64, open func() (io.ReadCloser, error)) error {
	base := p.BaseURL + "/v2/" + repo + "/blobs/"
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+d.String(), nil)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	resp, err := p.do(req)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
	default:
		return fmt.Errorf("blob %s: %w", d, statusError(resp))
	}

	req, err = http.NewRequestWithContext(ctx, http.MethodPost, base+"uploads/", nil)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	resp, err = p.do(req)
	if err != nil {
		return fmt.Errorf("blob %s: start upload: %w", d, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		err := statusError(resp)
		resp.Body.Close()
		return fmt.Errorf("blob %s: start upload: %w", d, err)
	}
	resp.Body.Close()
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("blob %s: upload Location %q: %v", d, resp.Header.Get("Location"), err)
	}
	q := loc.Query()
	q.Set("digest", d.String())
	loc.RawQuery = q.Encode()

	body, err := open()
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	defer body.Close()
	req, err = http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	if err != nil {
		return fmt.Errorf("blob %s: %w", d, err)
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err = p.do(req)
	if err != nil {
		return fmt.Errorf("blob %s: upload: %w", d, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("blob %s: upload: %w", d, statusError(resp))
	}
	return nil
}

func (p *Pusher) pushManifest(ctx context.Context, repo, ref, mediaType string, body []byte, want digest.Digest) error {
	u := p.BaseURL + "/v2/" + repo + "/manifests/" + url.PathEscape(ref)
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("manifest %s: %w", ref, err)
	}
	req.Header.Set("Content-Type", mediaType)
	resp, err := p.do(req)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", ref, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return fmt.Errorf("manifest %s: %w", ref, statusError(resp))
	}
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != want.String() {
		return fmt.Errorf("manifest %s: registry says %s, pushed %s", ref, got, want)
	}
	return nil
}
