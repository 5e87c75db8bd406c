package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// A token server that sends its headers and then nothing must not hang the
// client setup: the token exchange gives up within the idle timeout, and the
// error names the token endpoint.
func TestNewClientTokenReplyStalls(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) }) // runs before srv.Close
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `{"tok`)
		w.(http.Flusher).Flush()
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s/token",service="test"`, srv.URL))
		w.WriteHeader(http.StatusUnauthorized)
	})
	u, _ := url.Parse(srv.URL)
	o := &Options{IdleTimeout: 500 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	_, err := o.newClient(ctx, Endpoint{URL: u}, "a/b")
	took := time.Since(start)
	if err == nil {
		t.Fatal("newClient succeeded with a stalled token reply")
	}
	if ctx.Err() != nil || took > 5*time.Second {
		t.Fatalf("newClient took %v (err %v); want it to give up within the idle timeout", took, err)
	}
	if !strings.Contains(err.Error(), srv.URL+"/token") || !errors.Is(err, errdefs.ErrUnavailable) {
		t.Fatalf("err = %v; want ErrUnavailable naming %s/token", err, srv.URL)
	}
	t.Logf("after %v: %v", took.Round(time.Millisecond), err)
}

// A realm that redirects to the same host name on another port (or scheme)
// must not receive the user's credentials there; a redirect within the
// realm's own origin keeps them.
func TestFetchTokenRedirectCredentials(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]string{} // path -> Authorization
	record := func(r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen[r.URL.Path] = r.Header.Get("Authorization")
	}
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r)
		io.WriteString(w, `{"token":"other"}`)
	}))
	t.Cleanup(other.Close)
	realm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/cross":
			http.Redirect(w, r, other.URL+"/stolen?"+r.URL.RawQuery, http.StatusTemporaryRedirect)
		case "/same":
			http.Redirect(w, r, "/token?"+r.URL.RawQuery, http.StatusFound)
		default:
			record(r)
			io.WriteString(w, `{"token":"same"}`)
		}
	}))
	t.Cleanup(realm.Close)
	if hostname := func(s string) string { u, _ := url.Parse(s); return u.Hostname() }; hostname(other.URL) != hostname(realm.URL) {
		t.Fatalf("test servers on different host names: %s, %s", other.URL, realm.URL)
	}
	tr := newAuthTransport("registry.invalid", "a/b", "u", "p", http.DefaultTransport)

	tok, err := tr.fetchToken(context.Background(), realm.URL+"/cross", "test", pullScope("a/b"))
	if err != nil || tok != "other" {
		t.Fatalf("cross-port redirect: token %q, %v", tok, err)
	}
	mu.Lock()
	got, ok := seen["/stolen"]
	mu.Unlock()
	if !ok || got != "" {
		t.Fatalf("redirect target on another port got Authorization %q (reached: %v)", got, ok)
	}

	tok, err = tr.fetchToken(context.Background(), realm.URL+"/same", "test", pullScope("a/b"))
	if err != nil || tok != "same" {
		t.Fatalf("same-origin redirect: token %q, %v", tok, err)
	}
	mu.Lock()
	got = seen["/token"]
	mu.Unlock()
	if u, p, ok := (&http.Request{Header: http.Header{"Authorization": {got}}}).BasicAuth(); !ok || u != "u" || p != "p" {
		t.Fatalf("same-origin redirect lost the credentials: Authorization %q", got)
	}
}
