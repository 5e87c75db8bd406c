package remote

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// ErrUnauthorized is the kind of an authentication or authorization
// failure (HTTP 401 or 403); it is also an errdefs.ErrFailedPrecondition.
var ErrUnauthorized = fmt.Errorf("unauthorized: %w", errdefs.ErrFailedPrecondition)

const (
	dockerHub         = "docker.io"
	dockerHubEndpoint = "registry-1.docker.io"
)

// client talks to one endpoint for one repository.
type client struct {
	ep   Endpoint
	base string // scheme://host
	repo string
	http *http.Client
	idle time.Duration // IdleTimeout
}

// isLoopback reports whether host (host[:port]) is localhost or a loopback
// address, the only hosts plain HTTP is allowed to without configuration.
func isLoopback(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// plainAllowed reports whether plain HTTP may be used to reach ep.
func (o *Options) plainAllowed(ep Endpoint) bool {
	if ep.URL.Scheme == "http" || isLoopback(ep.URL.Host) {
		return true
	}
	host := ep.URL.Host
	bare := host
	if h, _, err := net.SplitHostPort(host); err == nil {
		bare = h
	}
	for _, in := range o.Insecure {
		if in == host || in == bare {
			return true
		}
	}
	return false
}

// plainGuard refuses plain-HTTP requests to hosts not allowed them, whatever
// the layers above (a token realm, a redirect) ask for.
type plainGuard struct {
	allowed func(host string) bool
	inner   http.RoundTripper
}

func (g *plainGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !g.allowed(req.URL.Host) {
		return nil, fmt.Errorf("plain HTTP to %s refused: not a loopback host and not marked insecure", req.URL.Host)
	}
	return g.inner.RoundTrip(req)
}

func (o *Options) baseTransport(ep Endpoint) (http.RoundTripper, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = o.idleTimeout()
	tr.MaxIdleConnsPerHost = 16
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: ep.SkipVerify} //nolint:gosec // only when the hosts file says skip_verify
	var cas []string
	if o.CAFile != "" {
		cas = append(cas, o.CAFile)
	}
	if ep.CAFile != "" {
		cas = append(cas, ep.CAFile)
	}
	if len(cas) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		for _, f := range cas {
			pem, err := os.ReadFile(f)
			if err != nil {
				return nil, fmt.Errorf("read CA file: %w", err)
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("CA file %s: no PEM certificate: %w", f, errdefs.ErrInvalidArgument)
			}
		}
		tlsConf.RootCAs = pool
	}
	tr.TLSClientConfig = tlsConf
	allowPlain := o.plainAllowed(ep)
	return &plainGuard{allowed: func(host string) bool { return allowPlain && host == ep.URL.Host }, inner: tr}, nil
}

// newClient probes ep (https first; plain HTTP only where allowed), and
// sets up authentication for repo (authTransport).
func (o *Options) newClient(ctx context.Context, ep Endpoint, repo string) (*client, error) {
	base, err := o.baseTransport(ep)
	if err != nil {
		return nil, err
	}
	schemes := []string{"https"}
	if ep.URL.Scheme == "http" {
		schemes = []string{"http"}
	} else if o.plainAllowed(ep) {
		schemes = append(schemes, "http")
	}
	var scheme string
	var challenges []string
	var probeErrs []error
	for _, s := range schemes {
		var err error
		if challenges, err = probe(ctx, base, s+"://"+ep.URL.Host+"/v2/", min(30*time.Second, o.idleTimeout())); err != nil {
			probeErrs = append(probeErrs, err)
			continue
		}
		scheme = s
		break
	}
	if scheme == "" {
		return nil, fmt.Errorf("%w: %w", joinedError(probeErrs), errdefs.ErrUnavailable)
	}
	var user, pass string
	if o.Credentials != nil {
		user, pass, err = o.Credentials(credentialKey(ep.URL.Host))
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", ep.URL.Host, err)
		}
	}
	tr := newAuthTransport(ep.URL.Host, repo, user, pass, base)
	tr.wait = tokenWait(o.idleTimeout())
	if err := tr.prepare(ctx, challenges); err != nil {
		return nil, authError(ep.URL.Host, tr.who(), err)
	}
	return &client{ep: ep, base: scheme + "://" + ep.URL.Host, repo: repo, http: &http.Client{Transport: tr}, idle: o.idleTimeout()}, nil
}

// authError names the host and identity of a failed authentication; a
// refusal stays an ErrUnauthorized.
func authError(host, who string, err error) error {
	if errors.Is(err, ErrUnauthorized) {
		return fmt.Errorf("authenticate to %s %s: %w", host, who, err)
	}
	return fmt.Errorf("authenticate to %s: %w", host, err)
}

// probe GETs the /v2/ endpoint: a 200 or 401 answer means a registry speaks
// at this scheme. It returns the WWW-Authenticate values of a 401.
func probe(ctx context.Context, rt http.RoundTripper, u string, timeout time.Duration) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return nil, nil
	case http.StatusUnauthorized:
		return resp.Header.Values("WWW-Authenticate"), nil
	}
	return nil, fmt.Errorf("GET %s: status %s, not a registry", u, resp.Status)
}

// statusError turns a non-2xx answer into an error of the right kind.
func (c *client) statusError(resp *http.Response, what string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	msg := strings.TrimSpace(string(body))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	err := fmt.Errorf("%s from %s: status %s", what, c.base, resp.Status)
	if msg != "" {
		err = fmt.Errorf("%w: %s", err, msg)
	}
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%w: %w", err, errdefs.ErrNotFound)
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%w: check the credentials for %s: %w", err, c.ep.URL.Host, ErrUnauthorized)
	case retryableStatus(resp.StatusCode):
		return &retryable{fmt.Errorf("%w: %w", err, errdefs.ErrUnavailable), retryAfter(resp)}
	}
	return err
}

func retryableStatus(code int) bool {
	return code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500
}

func retryAfter(resp *http.Response) time.Duration {
	return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
}

// MaxRetryAfter caps the wait a Retry-After header can ask for.
const MaxRetryAfter = 30 * time.Second

// parseRetryAfter reads a Retry-After value, seconds or an HTTP date, as a
// wait from now (0 when absent, malformed or past), capped at MaxRetryAfter.
func parseRetryAfter(s string, now time.Time) time.Duration {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(s, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		d = time.Duration(min(secs, int64(MaxRetryAfter/time.Second))) * time.Second
	} else if at, err := http.ParseTime(s); err == nil {
		d = at.Sub(now)
	}
	return max(0, min(d, MaxRetryAfter))
}

// retryable marks an error worth another attempt at the same endpoint.
type retryable struct {
	err   error
	after time.Duration
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

func isRetryable(err error) (time.Duration, bool) {
	var r *retryable
	if errors.As(err, &r) {
		return r.after, true
	}
	return 0, false
}
