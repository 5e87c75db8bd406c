package remotetest

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Rule is one fault. The first rule whose Match accepts a request and that
// has uses left applies to it; a request no rule matches is forwarded as is.
type Rule struct {
	// Match selects the requests the rule applies to (Blob, Manifest,
	// Any...).
	Match func(*http.Request) bool
	// Times is how many requests the rule applies to; 0 means every one.
	Times int

	// Status, when set, answers the request with this status, Header and
	// Body instead of forwarding it.
	Status int
	Header http.Header
	Body   []byte

	// IgnoreRange forwards the request without its Range header, as a
	// registry that does not support ranges would answer.
	IgnoreRange bool
	// Cut sends only the first Cut bytes of the body, then closes the
	// connection (the Content-Length stays that of the whole body).
	Cut int64
	// Stall sends StallAfter bytes of the body, then sends nothing until the
	// client goes away or the proxy closes.
	Stall      bool
	StallAfter int64
	// Corrupt flips the first byte of the body.
	Corrupt bool
	// Rewrite replaces the body (Content-Length follows; Docker-Content-Digest
	// is kept, unless DropHeaders names it).
	Rewrite func(body []byte) []byte
	// DropHeaders removes response headers.
	DropHeaders []string
	// Hold, when set, holds the request until Hold is closed (then the
	// rest of the rule applies), the client goes away or the proxy closes.
	Hold chan struct{}

	used int
}

// Proxy is a reverse proxy in front of a registry.
type Proxy struct {
	srv      *httptest.Server
	upstream string
	done     chan struct{}

	mu     sync.Mutex
	rules  []*Rule
	gets   map[string]int
	ranges map[string][]string
}

// New starts a proxy in front of upstream (a registry's base URL, such as
// registry.Registry.URL()); t.Cleanup stops it, ending stalled responses
// first.
func New(t testing.TB, upstream string) *Proxy {
	t.Helper()
	p := &Proxy{upstream: strings.TrimSuffix(upstream, "/"), done: make(chan struct{}), gets: map[string]int{}, ranges: map[string][]string{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	t.Cleanup(func() { close(p.done) }) // runs first: unblocks stalls
	return p
}

// Host is the proxy's host:port.
func (p *Proxy) Host() string { return strings.TrimPrefix(p.srv.URL, "http://") }

// Ref returns the reference of name ("repo:tag") through the proxy.
func (p *Proxy) Ref(name string) string { return p.Host() + "/" + name }

// Add installs a rule after those already there.
func (p *Proxy) Add(r Rule) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	rr := r
	p.rules = append(p.rules, &rr)
	return &rr
}

// Clear removes every rule.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// Gets returns how many GETs of the blob dgst ("sha256:...") reached the
// proxy.
func (p *Proxy) Gets(dgst string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gets[dgst]
}

// AllGets returns the GET count of every blob requested so far.
func (p *Proxy) AllGets() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]int, len(p.gets))
	for k, v := range p.gets {
		out[k] = v
	}
	return out
}

// Ranges returns the Range headers of the GETs of blob dgst, in order ("" for
// a GET without one).
func (p *Proxy) Ranges(dgst string) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.ranges[dgst]...)
}

// Blob matches requests for the blob dgst ("sha256:...").
func Blob(dgst string) func(*http.Request) bool {
	return func(r *http.Request) bool { return BlobDigest(r.URL.Path) == dgst }
}

// Manifest matches requests for the manifest named by a tag or digest.
func Manifest(tagOrDigest string) func(*http.Request) bool {
	return func(r *http.Request) bool {
		return strings.HasSuffix(r.URL.Path, "/manifests/"+tagOrDigest)
	}
}

// Any matches every request but the /v2/ probe.
func Any(r *http.Request) bool { return r.URL.Path != "/v2/" }

// BlobDigest returns the digest of a blob request path, or "".
func BlobDigest(path string) string {
	i := strings.Index(path, "/blobs/sha256:")
	if i < 0 {
		return ""
	}
	return path[i+len("/blobs/"):]
}

func (p *Proxy) rule(req *http.Request) *Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	if d := BlobDigest(req.URL.Path); d != "" && req.Method == http.MethodGet {
		p.gets[d]++
		p.ranges[d] = append(p.ranges[d], req.Header.Get("Range"))
	}
	for _, r := range p.rules {
		if (r.Times == 0 || r.used < r.Times) && r.Match(req) {
			r.used++
			rr := *r
			return &rr
		}
	}
	return nil
}

func (p *Proxy) serve(w http.ResponseWriter, req *http.Request) {
	r := p.rule(req)
	if r != nil && r.Hold != nil {
		select {
		case <-r.Hold:
		case <-req.Context().Done():
			return
		case <-p.done:
			return
		}
	}
	if r != nil && r.Status != 0 {
		for k, vs := range r.Header {
			w.Header()[k] = vs
		}
		w.WriteHeader(r.Status)
		_, _ = w.Write(r.Body)
		return
	}
	out, err := http.NewRequestWithContext(req.Context(), req.Method, p.upstream+req.URL.RequestURI(), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	out.Header = req.Header.Clone()
	if r != nil && r.IgnoreRange {
		out.Header.Del("Range")
	}
	// Redirects (a registry may send blobs elsewhere) are followed here.
	resp, err := http.DefaultClient.Do(out)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	for k, vs := range resp.Header {
		w.Header()[k] = vs
	}
	if r == nil {
		w.WriteHeader(resp.StatusCode)
		_, _ = io.Copy(w, resp.Body)
		return
	}
	for _, h := range r.DropHeaders {
		w.Header().Del(h)
	}
	var body io.Reader = resp.Body
	if r.Rewrite != nil {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		b = r.Rewrite(b)
		w.Header().Set("Content-Length", strconv.Itoa(len(b)))
		body = bytes.NewReader(b)
	}
	if r.Corrupt {
		body = &flipReader{r: body}
	}
	w.WriteHeader(resp.StatusCode)
	switch {
	case r.Stall:
		_, _ = io.CopyN(w, body, r.StallAfter)
		flush(w)
		select {
		case <-req.Context().Done():
		case <-p.done:
		}
	case r.Cut > 0:
		_, _ = io.CopyN(w, body, r.Cut)
		flush(w)
		// Returning short of Content-Length makes the server close the
		// connection: the client sees the body end early.
	default:
		_, _ = io.Copy(w, body)
	}
}

func flush(w http.ResponseWriter) {
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
}

type flipReader struct {
	r       io.Reader
	flipped bool
}

func (f *flipReader) Read(b []byte) (int, error) {
	n, err := f.r.Read(b)
	if n > 0 && !f.flipped {
		b[0] ^= 0xff
		f.flipped = true
	}
	return n, err
}
