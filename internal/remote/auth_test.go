package remote

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want []challenge
	}{
		{[]string{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`},
			[]challenge{{"bearer", map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull"}}}},
		{[]string{`Basic realm="gantry test"`}, []challenge{{"basic", map[string]string{"realm": "gantry test"}}}},
		{[]string{`Basic realm=x, Bearer realm="r\"q", error="insufficient_scope"`},
			[]challenge{{"basic", map[string]string{"realm": "x"}}, {"bearer", map[string]string{"realm": `r"q`, "error": "insufficient_scope"}}}},
		{[]string{`Negotiate`, `bearer realm=r`}, []challenge{{"negotiate", map[string]string{}}, {"bearer", map[string]string{"realm": "r"}}}},
		{[]string{`=oops`}, nil},
	} {
		if got := parseChallenges(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("parseChallenges(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// tokenRegistry is a registry that wants a Bearer token from its own /token
// (user u, password p; anonymous gets no token when needAuth).
func tokenRegistry(t *testing.T, needAuth bool) (srv *httptest.Server, tokens *atomic.Int32) {
	tokens = new(atomic.Int32)
	mux := http.NewServeMux()
	srv = httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	challenge := fmt.Sprintf(`Bearer realm="%s/token",service="test"`, srv.URL)
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if (ok && (u != "u" || p != "p")) || (!ok && needAuth) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if r.URL.Query().Get("service") != "test" || r.URL.Query().Get("scope") != "repository:a/b:pull" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		tokens.Add(1)
		fmt.Fprintf(w, `{"access_token":"tok-%s"}`, u)
	})
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		want := "Bearer tok-"
		if needAuth {
			want += "u"
		}
		if r.Header.Get("Authorization") != want {
			w.Header().Set("WWW-Authenticate", challenge+`,scope="repository:a/b:pull"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		fmt.Fprint(w, "ok")
	})
	return srv, tokens
}

func TestAuthTransportBearer(t *testing.T) {
	for _, tc := range []struct {
		name       string
		needAuth   bool
		user, pass string
		status     int
	}{
		{"anonymous token", false, "", "", http.StatusOK},
		{"password token", true, "u", "p", http.StatusOK},
		{"bad password", true, "u", "x", http.StatusUnauthorized},
		{"anonymous refused", true, "", "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, tokens := tokenRegistry(t, tc.needAuth)
			u, _ := url.Parse(srv.URL)
			tr := newAuthTransport(u.Host, "a/b", tc.user, tc.pass, http.DefaultTransport)
			c := &http.Client{Transport: tr}
			for i := range 3 {
				resp, err := c.Get(srv.URL + "/v2/a/b/manifests/latest")
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("request %d: status %d, want %d", i, resp.StatusCode, tc.status)
				}
			}
			if tc.status == http.StatusOK && tokens.Load() != 1 {
				t.Fatalf("%d tokens fetched for 3 requests, want 1 (cached)", tokens.Load())
			}
		})
	}
}

func TestNewClientBearerRefused(t *testing.T) {
	srv, _ := tokenRegistry(t, true)
	u, _ := url.Parse(srv.URL)
	o := &Options{Credentials: StaticCredentials(map[string][2]string{u.Host: {"u", "wrong"}})}
	_, err := o.newClient(context.Background(), Endpoint{URL: u}, "a/b")
	if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), u.Host) || !strings.Contains(err.Error(), `as "u"`) {
		t.Fatalf("err = %v; want ErrUnauthorized naming %s and the user", err, u.Host)
	}
	o.Credentials = StaticCredentials(map[string][2]string{u.Host: {"u", "p"}})
	c, err := o.newClient(context.Background(), Endpoint{URL: u}, "a/b")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.http.Get(srv.URL + "/v2/a/b/manifests/latest")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d after a good token", resp.StatusCode)
	}
}

func TestAuthTransportNoCredentialsToOtherHosts(t *testing.T) {
	var got atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	t.Cleanup(other.Close)
	tr := newAuthTransport("registry.invalid:5000", "a/b", "u", "p", http.DefaultTransport)
	tr.basic = true
	resp, err := (&http.Client{Transport: tr}).Get(other.URL + "/blob")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s, _ := got.Load().(string); s != "" {
		t.Fatalf("Authorization %q sent to another host", s)
	}
}
