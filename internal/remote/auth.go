package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// maxTokenReply bounds what is read of a token server's answer.
const maxTokenReply = 1 << 20

// maxTokenWait caps how long a token exchange may take, as probe's is capped.
const maxTokenWait = 30 * time.Second

// challenge is one WWW-Authenticate challenge: a lower-case scheme
// ("bearer", "basic") and its auth-params, keys lower-cased.
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges reads the challenges of WWW-Authenticate header values
// (RFC 9110 section 11.6.1): `Bearer realm="...",service="...",scope="..."`.
// Malformed parts are skipped.
func parseChallenges(values []string) []challenge {
	var out []challenge
	for _, s := range values {
		for {
			s = strings.TrimLeft(s, " \t,")
			if s == "" {
				break
			}
			tok, rest := readToken(s)
			if tok == "" {
				break // not a token: give up on this value
			}
			rest = strings.TrimLeft(rest, " \t")
			if strings.HasPrefix(rest, "=") {
				rest = strings.TrimLeft(rest[1:], " \t")
				val, after := readValue(rest)
				if len(out) > 0 {
					out[len(out)-1].params[strings.ToLower(tok)] = val
				}
				s = after
				continue
			}
			out = append(out, challenge{scheme: strings.ToLower(tok), params: map[string]string{}})
			s = rest
		}
	}
	return out
}

func readToken(s string) (string, string) {
	i := strings.IndexAny(s, " \t,=\"")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// readValue reads a token or a quoted string (with backslash escapes).
func readValue(s string) (string, string) {
	if !strings.HasPrefix(s, `"`) {
		i := strings.IndexAny(s, " \t,")
		if i < 0 {
			return s, ""
		}
		return s[:i], s[i:]
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch c := s[i]; c {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), "" // unterminated: take what there is
}

// pullScope is the token scope to pull repo.
func pullScope(repo string) string { return "repository:" + repo + ":pull" }

// bearerToken is a cached token and when it stops being sent unasked.
type bearerToken struct {
	token   string
	expires time.Time
}

// authTransport authenticates requests to one registry host for one
// repository. It sends each request as it is (plus what it already knows:
// basic credentials once the registry asked for them, or the cached token of
// the pull scope); on a 401 it reads the WWW-Authenticate challenge, gets a
// Bearer token from the realm (with the basic credentials, if any) or uses
// the basic credentials, and sends the request once more. Only requests
// without a body (GET, HEAD) are sent again; requests to other hosts
// (redirects to a blob store) are never given credentials.
type authTransport struct {
	host       string // host[:port] the credentials are for
	scope      string // default token scope
	user, pass string
	base       http.RoundTripper
	now        func() time.Time
	wait       time.Duration // bound of one token exchange, body included

	mu     sync.Mutex
	basic  bool                   // the registry asked for basic auth
	tokens map[string]bearerToken // per scope
	last   string                 // scope of the token last fetched
}

func newAuthTransport(host, repo, user, pass string, base http.RoundTripper) *authTransport {
	return &authTransport{host: host, scope: pullScope(repo), user: user, pass: pass, base: base, now: time.Now, wait: tokenWait(DefaultIdleTimeout), tokens: map[string]bearerToken{}}
}

// tokenWait is how long a token exchange may take for a pull whose idle
// timeout is idle: that, at most maxTokenWait.
func tokenWait(idle time.Duration) time.Duration {
	return min(idle, maxTokenWait)
}

func (t *authTransport) hasCreds() bool { return t.user != "" || t.pass != "" }

// who names the identity used, for errors.
func (t *authTransport) who() string {
	if t.hasCreds() {
		return fmt.Sprintf("as %q", t.user)
	}
	return "anonymously"
}

// RoundTrip implements http.RoundTripper.
func (t *authTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != t.host || req.Header.Get("Authorization") != "" {
		return t.base.RoundTrip(req)
	}
	r := req.Clone(req.Context())
	sent := t.authorize(r)
	resp, err := t.base.RoundTrip(r)
	if err != nil || resp.StatusCode != http.StatusUnauthorized || !replayable(req) {
		return resp, err
	}
	retry := req.Clone(req.Context())
	ok, err := t.answer(req.Context(), resp.Header.Values("WWW-Authenticate"), retry, sent)
	if err != nil {
		if !errors.Is(err, errdefs.ErrUnavailable) {
			// Credentials refused or a broken challenge: the caller
			// reports the 401 itself.
			return resp, nil
		}
		resp.Body.Close()
		return nil, err
	}
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	return t.base.RoundTrip(retry)
}

func replayable(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) && (req.Body == nil || req.Body == http.NoBody)
}

// authorize adds what is known of the registry's authentication to r and
// returns the Authorization header sent ("" for none).
func (t *authTransport) authorize(r *http.Request) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if tok, ok := t.tokens[t.last]; ok && t.now().Before(tok.expires) {
		r.Header.Set("Authorization", "Bearer "+tok.token)
	} else if t.basic && t.hasCreds() {
		r.SetBasicAuth(t.user, t.pass)
	}
	return r.Header.Get("Authorization")
}

// answer prepares retry for the challenges of a 401; false means there is
// nothing new to send (no usable challenge, no credentials, or the same
// credentials were already refused).
func (t *authTransport) answer(ctx context.Context, values []string, retry *http.Request, sent string) (bool, error) {
	var basic, bearer *challenge
	for _, c := range parseChallenges(values) {
		switch c.scheme {
		case "bearer":
			if bearer == nil {
				bearer = &c
			}
		case "basic":
			if basic == nil {
				basic = &c
			}
		}
	}
	switch {
	case bearer != nil:
		scope := bearer.params["scope"]
		if scope == "" {
			scope = t.scope
		}
		tok, err := t.fetchToken(ctx, bearer.params["realm"], bearer.params["service"], scope)
		if err != nil {
			return false, err
		}
		if h := "Bearer " + tok; h != sent {
			retry.Header.Set("Authorization", h)
			return true, nil
		}
		return false, nil
	case basic != nil:
		t.mu.Lock()
		t.basic = true
		t.mu.Unlock()
		if !t.hasCreds() {
			return false, nil
		}
		retry.SetBasicAuth(t.user, t.pass)
		return retry.Header.Get("Authorization") != sent, nil
	}
	return false, nil
}

// fetchToken GETs a token for scope (space-separated scopes) from realm and
// caches it. A 401 or 403 from the token server is ErrUnauthorized. The
// whole exchange, reply body included, is bounded by t.wait.
func (t *authTransport) fetchToken(ctx context.Context, realm, service, scope string) (string, error) {
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("bearer challenge of %s: realm %q is not an http(s) URL: %w", t.host, realm, errdefs.ErrInvalidArgument)
	}
	q := u.Query()
	if service != "" {
		q.Set("service", service)
	}
	for _, s := range strings.Fields(scope) {
		q.Add("scope", s)
	}
	u.RawQuery = q.Encode()
	tctx, cancel := context.WithTimeout(ctx, t.wait)
	defer cancel()
	failed := func(err error) error {
		if ctx.Err() == nil && tctx.Err() != nil {
			return fmt.Errorf("token from %s: no complete reply within %s: %w", realm, t.wait, errdefs.ErrUnavailable)
		}
		return fmt.Errorf("token from %s: %w: %w", realm, err, errdefs.ErrUnavailable)
	}
	req, err := http.NewRequestWithContext(tctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return "", fmt.Errorf("token request to %s: %w", realm, err)
	}
	if t.hasCreds() {
		req.SetBasicAuth(t.user, t.pass)
	}
	resp, err := (&http.Client{Transport: t.base, CheckRedirect: tokenRedirect}).Do(req)
	if err != nil {
		return "", failed(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenReply))
	if err != nil {
		return "", failed(err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", fmt.Errorf("token from %s for %q: status %s: %w", realm, scope, resp.Status, ErrUnauthorized)
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return "", fmt.Errorf("token from %s: status %s: %w", realm, resp.Status, errdefs.ErrUnavailable)
	case resp.StatusCode != http.StatusOK:
		return "", fmt.Errorf("token from %s: status %s", realm, resp.Status)
	}
	var reply struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal(body, &reply); err != nil {
		return "", fmt.Errorf("token from %s: %w: %w", realm, err, errdefs.ErrInvalidArgument)
	}
	tok := reply.Token
	if tok == "" {
		tok = reply.AccessToken
	}
	if tok == "" {
		return "", fmt.Errorf("token from %s: reply has no token: %w", realm, errdefs.ErrInvalidArgument)
	}
	// Tokens live at least 60 seconds (distribution's token spec); send a
	// cached one unasked a little less long than it lives.
	life := time.Duration(max(reply.ExpiresIn, 60)) * time.Second
	t.mu.Lock()
	t.tokens[scope] = bearerToken{token: tok, expires: t.now().Add(life - 10*time.Second)}
	t.last = scope
	t.mu.Unlock()
	return tok, nil
}

// tokenRedirect follows a token server's redirects (at most 10, as Go does)
// but sends the credentials only within the realm's origin (scheme, host and
// port): Go keeps the Authorization header for the same host name on any
// port or scheme.
func tokenRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	if origin(req.URL) != origin(via[0].URL) {
		req.Header.Del("Authorization")
	}
	return nil
}

// origin is the scheme://host:port of u, the port filled in.
func origin(u *url.URL) string {
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	return strings.ToLower(u.Scheme + "://" + net.JoinHostPort(u.Hostname(), port))
}

// prepare learns how the registry authenticates from the challenge of its
// /v2/ answer and, for Bearer, gets the pull token now, so that refused
// credentials are reported once, naming the host.
func (t *authTransport) prepare(ctx context.Context, values []string) error {
	for _, c := range parseChallenges(values) {
		switch c.scheme {
		case "bearer":
			if _, err := t.fetchToken(ctx, c.params["realm"], c.params["service"], t.scope); err != nil {
				return err
			}
			return nil
		case "basic":
			t.mu.Lock()
			t.basic = true
			t.mu.Unlock()
			return nil
		}
	}
	return nil
}
