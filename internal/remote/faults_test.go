package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/remote/remotetest"
	"github.com/gantry-project/gantry/test/registry"
)

// busyboxDigests returns the manifest, config and layer digests of img.
func busyboxDigests(t *testing.T, img *registry.Image) (manifest, config, layer string, layerSize int64) {
	t.Helper()
	l := img.Layers[0]
	return img.Digest.String(), img.ConfigDigest().String(), l.Digest.String(), l.Size
}

// wantErr checks that err is of kind (an errors.Is target) and names every
// one of names.
func wantErr(t *testing.T, err error, kind error, names ...string) {
	t.Helper()
	t.Logf("error: %v", err)
	if err == nil {
		t.Fatalf("no error; want %v", kind)
	}
	if kind != nil && !errors.Is(err, kind) {
		t.Fatalf("err = %v; want kind %v", err, kind)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Fatalf("err = %v; does not name %q", err, n)
		}
	}
}

// blobs returns the digests committed in cs.
func blobs(t *testing.T, cs *content.Store) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	if err := cs.Walk(context.Background(), func(i content.Info) error {
		out[i.Digest.String()] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPullDigestMismatch(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	idx := registry.PushMultiArch(t, r, "multi:latest")
	md, cd, _, _ := busyboxDigests(t, img)
	child := idx.Index.Manifests[0].Digest.String() // linux/amd64
	_, childCfg, _, _ := busyboxDigests(t, idx.Images[0])

	for _, tc := range []struct {
		name, ref string
		rule      remotetest.Rule
		names     []string
	}{
		// By digest the expected digest is the reference's.
		{"manifest by digest", "busybox@" + md, remotetest.Rule{Match: remotetest.Manifest(md), Corrupt: true}, []string{md, "content has digest sha256:"}},
		// By tag it is the registry's Docker-Content-Digest.
		{"manifest by tag", "busybox:latest", remotetest.Rule{Match: remotetest.Manifest("latest"), Corrupt: true}, []string{"registry says " + md}},
		// A manifest an index names.
		{"manifest in index", "multi:latest", remotetest.Rule{Match: remotetest.Manifest(child), Corrupt: true}, []string{child, "content has digest sha256:"}},
		{"config", "busybox:latest", remotetest.Rule{Match: remotetest.Blob(cd), Corrupt: true}, []string{cd, "content has digest sha256:"}},
		{"config in index", "multi:latest", remotetest.Rule{Match: remotetest.Blob(childCfg), Corrupt: true}, []string{childCfg}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := remotetest.New(t, r.URL())
			p.Add(tc.rule)
			cs := newStore(t)
			ref := p.Ref(tc.ref)
			_, _, _, err := Pull(context.Background(), cs, ref, Options{MaxRetries: 1})
			wantErr(t, err, errdefs.ErrInvalidArgument, append([]string{"pull " + ref}, tc.names...)...)
			for _, d := range []string{md, cd, child, childCfg} {
				if blobs(t, cs)[d] && strings.Contains(err.Error(), d) {
					t.Fatalf("mismatching %s visible in the store", d)
				}
			}
			if ings, err := cs.Ingests(context.Background()); err != nil || len(ings) != 0 {
				t.Fatalf("ingests left after a mismatch: %+v, %v", ings, err)
			}
			p.Clear()
			if _, _, _, err := Pull(context.Background(), cs, ref, Options{}); err != nil {
				t.Fatalf("retry: %v", err)
			}
		})
	}
}

func TestPullTruncated(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	_, _, ld, size := busyboxDigests(t, img)
	ctx := context.Background()

	t.Run("range ignored", func(t *testing.T) {
		// Cut once; the retry's Range is dropped and the registry answers
		// 200 with the whole blob, which replaces the partial ingest.
		p := remotetest.New(t, r.URL())
		p.Add(remotetest.Rule{Match: remotetest.Blob(ld), Times: 1, Cut: size / 2})
		p.Add(remotetest.Rule{Match: remotetest.Blob(ld), IgnoreRange: true})
		cs := newStore(t)
		target, m, cfg, err := Pull(ctx, cs, p.Ref("busybox:latest"), Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkPulled(t, cs, img, target, m, cfg)
		if rg := p.Ranges(ld); len(rg) != 2 || rg[0] != "" || !strings.HasPrefix(rg[1], "bytes=") {
			t.Fatalf("Range headers %q; want none, then a resume", rg)
		}
		if err := cs.Verify(ctx, digest.Digest(ld)); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("always cut", func(t *testing.T) {
		// Every answer is cut: the pull gives up naming the blob, keeps the
		// partial ingest (nothing visible), and the next pull resumes it.
		p := remotetest.New(t, r.URL())
		p.Add(remotetest.Rule{Match: remotetest.Blob(ld), Times: 2, Cut: size / 4})
		cs := newStore(t)
		ref := p.Ref("busybox:latest")
		_, _, _, err := Pull(ctx, cs, ref, Options{MaxRetries: 1})
		wantErr(t, err, nil, "pull "+ref, "blob "+ld, "cut at")
		if blobs(t, cs)[ld] {
			t.Fatal("cut layer visible in the store")
		}
		st, err := cs.IngestStatus(ctx, "fetch-"+ld)
		if err != nil || st.Offset <= 0 || st.Offset >= size {
			t.Fatalf("ingest after the cuts: %+v, %v; want a partial one", st, err)
		}
		target, m, cfg, err := Pull(ctx, cs, ref, Options{})
		if err != nil {
			t.Fatal(err)
		}
		checkPulled(t, cs, img, target, m, cfg)
		rg := p.Ranges(ld)
		if want := fmt.Sprintf("bytes=%d-", st.Offset); len(rg) != 3 || rg[2] != want {
			t.Fatalf("Range headers %q; want the third to be %s", rg, want)
		}
	})
}

func TestPullManifestTooLarge(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	registry.PushBusybox(t, r, "busybox:latest")
	idx := registry.PushMultiArch(t, r, "multi:latest")
	ctx := context.Background()

	t.Run("body", func(t *testing.T) {
		p := remotetest.New(t, r.URL())
		p.Add(remotetest.Rule{Match: remotetest.Manifest("latest"), DropHeaders: []string{"Docker-Content-Digest"}, Rewrite: func(b []byte) []byte {
			return append(b, bytes.Repeat([]byte(" "), MaxManifestSize)...)
		}})
		ref := p.Ref("busybox:latest")
		_, _, _, err := Pull(ctx, newStore(t), ref, Options{})
		wantErr(t, err, errdefs.ErrInvalidArgument, "pull "+ref, "manifest latest", fmt.Sprintf("larger than %d bytes", MaxManifestSize))
	})

	t.Run("descriptor in index", func(t *testing.T) {
		child := idx.Index.Manifests[0].Digest.String()
		p := remotetest.New(t, r.URL())
		p.Add(remotetest.Rule{Match: remotetest.Manifest("latest"), DropHeaders: []string{"Docker-Content-Digest"}, Rewrite: func(b []byte) []byte {
			var ix map[string]any
			if err := json.Unmarshal(b, &ix); err != nil {
				t.Error(err)
				return b
			}
			for _, m := range ix["manifests"].([]any) {
				m.(map[string]any)["size"] = MaxManifestSize + 1
			}
			out, _ := json.Marshal(ix)
			return out
		}})
		ref := p.Ref("multi:latest")
		cs := newStore(t)
		_, _, _, err := Pull(ctx, cs, ref, Options{Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"}})
		wantErr(t, err, errdefs.ErrInvalidArgument, "pull "+ref, "manifest "+child, "more than")
		if p.Gets(child) != 0 || blobs(t, cs)[child] {
			t.Fatal("the oversized manifest was fetched")
		}
	})
}

func TestPullUnknownMediaType(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	_, _, ld, _ := busyboxDigests(t, img)
	odd, err := registry.NewImage(registry.Platform{}, false, []string{"/bin/sh"}, registry.WithMediaType(img.Layers[0], "application/vnd.example.layer.v1+weird"))
	if err != nil {
		t.Fatal(err)
	}
	registry.Push(t, r, "oddlayer:latest", odd)
	helm, err := registry.WithConfigMediaType(img, "application/vnd.cncf.helm.config.v1+json")
	if err != nil {
		t.Fatal(err)
	}
	registry.Push(t, r, "helm:latest", helm)
	_, hcfg, _, _ := busyboxDigests(t, helm)
	ctx := context.Background()

	for _, tc := range []struct {
		name, ref string
		rule      *remotetest.Rule
		names     []string
	}{
		{name: "layer", ref: "oddlayer:latest", names: []string{"layer " + ld, "application/vnd.example.layer.v1+weird"}},
		{name: "config", ref: "helm:latest", names: []string{"config " + hcfg, "application/vnd.cncf.helm.config.v1+json"}},
		{name: "manifest", ref: "busybox:latest", rule: &remotetest.Rule{
			Match: remotetest.Manifest("latest"), DropHeaders: []string{"Docker-Content-Digest"},
			Rewrite: func(b []byte) []byte {
				return bytes.Replace(b, []byte(ocispec.MediaTypeImageManifest), []byte("application/vnd.example.manifest.v9+json"), 1)
			},
		}, names: []string{"manifest latest", "application/vnd.example.manifest.v9+json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := remotetest.New(t, r.URL())
			if tc.rule != nil {
				p.Add(*tc.rule)
			}
			ref := p.Ref(tc.ref)
			cs := newStore(t)
			_, _, _, err := Pull(ctx, cs, ref, Options{})
			wantErr(t, err, errdefs.ErrNotImplemented, append([]string{"pull " + ref}, tc.names...)...)
			if n := len(p.AllGets()); n != 0 {
				t.Fatalf("%d blobs fetched for an image that cannot be used", n)
			}
		})
	}
}

func TestPullStatusErrors(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	_, _, ld, _ := busyboxDigests(t, img)
	ctx := context.Background()
	retryAfter := http.Header{"Retry-After": {"1"}}
	for _, tc := range []struct {
		name  string
		rule  remotetest.Rule
		ok    bool
		gets  int   // GETs of the layer
		kind  error // when !ok
		names []string
	}{
		{name: "401 blob", rule: remotetest.Rule{Match: remotetest.Blob(ld), Status: 401, Body: []byte(`{"errors":[{"code":"UNAUTHORIZED"}]}`)},
			kind: ErrUnauthorized, gets: 1, names: []string{"blob " + ld, "401", "check the credentials"}},
		{name: "403 manifest", rule: remotetest.Rule{Match: remotetest.Manifest("latest"), Status: 403},
			kind: ErrUnauthorized, names: []string{"manifest latest", "403"}},
		{name: "404 blob", rule: remotetest.Rule{Match: remotetest.Blob(ld), Status: 404, Body: []byte(`{"errors":[{"code":"BLOB_UNKNOWN"}]}`)},
			kind: errdefs.ErrNotFound, gets: 1, names: []string{"blob " + ld, "404", "BLOB_UNKNOWN"}},
		{name: "429 Retry-After then ok", rule: remotetest.Rule{Match: remotetest.Blob(ld), Times: 2, Status: 429, Header: retryAfter},
			ok: true, gets: 3},
		{name: "429 then ok", rule: remotetest.Rule{Match: remotetest.Blob(ld), Times: 2, Status: 429},
			ok: true, gets: 3},
		{name: "429 manifest then ok", rule: remotetest.Rule{Match: remotetest.Manifest("latest"), Times: 1, Status: 429, Header: retryAfter},
			ok: true, gets: 1},
		{name: "429 always", rule: remotetest.Rule{Match: remotetest.Blob(ld), Status: 429, Header: retryAfter},
			kind: errdefs.ErrUnavailable, gets: 3, names: []string{"blob " + ld, "429"}},
		{name: "500 then ok", rule: remotetest.Rule{Match: remotetest.Blob(ld), Times: 1, Status: 500},
			ok: true, gets: 2},
		{name: "500 always", rule: remotetest.Rule{Match: remotetest.Blob(ld), Status: 500},
			kind: errdefs.ErrUnavailable, gets: 3, names: []string{"blob " + ld, "500"}},
		{name: "503 manifest always", rule: remotetest.Rule{Match: remotetest.Manifest("latest"), Status: 503},
			kind: errdefs.ErrUnavailable, names: []string{"manifest latest", "503"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := remotetest.New(t, r.URL())
			p.Add(tc.rule)
			ref := p.Ref("busybox:latest")
			cs := newStore(t)
			target, m, cfg, err := Pull(ctx, cs, ref, Options{MaxRetries: 2})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				checkPulled(t, cs, img, target, m, cfg)
			} else {
				wantErr(t, err, tc.kind, append([]string{"pull " + ref}, tc.names...)...)
				if blobs(t, cs)[ld] {
					t.Fatal("layer visible after a failed download")
				}
			}
			// MaxRetries 2: at most the first try and two retries.
			if tc.gets != 0 && p.Gets(ld) != tc.gets {
				t.Fatalf("layer GET %d times, want %d", p.Gets(ld), tc.gets)
			}
		})
	}
}

func TestPullStall(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	_, _, ld, size := busyboxDigests(t, img)
	ctx := context.Background()

	t.Run("blob stalls once", func(t *testing.T) {
		p := remotetest.New(t, r.URL())
		p.Add(remotetest.Rule{Match: remotetest.Blob(ld), Times: 1, Stall: true, StallAfter: size / 2})
		cs := newStore(t)
		target, m, cfg, err := Pull(ctx, cs, p.Ref("busybox:latest"), Options{IdleTimeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		checkPulled(t, cs, img, target, m, cfg)
		if rg := p.Ranges(ld); len(rg) != 2 || rg[0] != "" || rg[1] == "" || rg[1] == "bytes=0-" {
			t.Fatalf("Range headers %q; want none, then a resume past 0", rg)
		}
	})
	t.Run("blob stalls always", func(t *testing.T) {
		p := remotetest.New(t, r.URL())
		p.Add(remotetest.Rule{Match: remotetest.Blob(ld), Stall: true, StallAfter: 1000})
		cs := newStore(t)
		ref := p.Ref("busybox:latest")
		_, _, _, err := Pull(ctx, cs, ref, Options{IdleTimeout: time.Second, MaxRetries: 1})
		wantErr(t, err, errdefs.ErrUnavailable, "pull "+ref, "blob "+ld, "registry sent nothing for 1s")
		if blobs(t, cs)[ld] {
			t.Fatal("stalled layer visible in the store")
		}
	})
	t.Run("manifest headers stall", func(t *testing.T) {
		p := remotetest.New(t, r.URL())
		// The status line comes, the body never does.
		p.Add(remotetest.Rule{Match: remotetest.Manifest("latest"), Stall: true})
		ref := p.Ref("busybox:latest")
		_, _, _, err := Pull(ctx, newStore(t), ref, Options{IdleTimeout: time.Second, MaxRetries: 1})
		wantErr(t, err, errdefs.ErrUnavailable, "pull "+ref, "manifest latest", "registry sent nothing")
	})
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-3", 0},
		{"2", 2 * time.Second},
		{" 7 ", 7 * time.Second},
		{"3600", MaxRetryAfter},
		{"soon", 0},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(time.Hour).Format(http.TimeFormat), MaxRetryAfter},
	} {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
