package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/remote/remotetest"
	"github.com/gantry-project/gantry/test/registry"
)

func newStore(t *testing.T) *content.Store {
	t.Helper()
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// checkPulled asserts that every blob of img is in cs and that Pull
// returned img's manifest and config.
func checkPulled(t *testing.T, cs *content.Store, img *registry.Image, target ocispec.Descriptor, m ocispec.Manifest, cfg ocispec.Image) {
	t.Helper()
	if want := img.Digest; target.Digest != want {
		t.Fatalf("target %s, want %s", target.Digest, want)
	}
	layers := img.Layers
	if len(m.Layers) != len(layers) || len(cfg.RootFS.DiffIDs) != len(layers) {
		t.Fatalf("%d layers / %d diff_ids, want %d", len(m.Layers), len(cfg.RootFS.DiffIDs), len(layers))
	}
	for _, d := range append([]ocispec.Descriptor{target, m.Config}, m.Layers...) {
		info, err := cs.Info(context.Background(), d.Digest)
		if err != nil {
			t.Fatalf("blob %s not in store: %v", d.Digest, err)
		}
		if info.Size != d.Size {
			t.Fatalf("blob %s: %d bytes in store, descriptor %d", d.Digest, info.Size, d.Size)
		}
	}
}

func TestPullPlain(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	docker := registry.PushDockerBusybox(t, r, "docker/busybox:v2")
	cs := newStore(t)
	var mu sync.Mutex
	done := map[digest.Digest]bool{}
	opts := Options{Progress: func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Done {
			done[p.Digest] = true
		}
	}}
	target, m, cfg, err := Pull(context.Background(), cs, r.Ref("busybox:latest"), opts)
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, cs, img, target, m, cfg)
	if target.MediaType != ocispec.MediaTypeImageManifest || cfg.Architecture != "amd64" || len(cfg.Config.Cmd) == 0 {
		t.Fatalf("target %+v config %+v", target, cfg)
	}
	if !done[m.Layers[0].Digest] || !done[m.Config.Digest] {
		t.Fatalf("no Done progress for layer and config: %v", done)
	}
	// Pulling by digest gives the same.
	again, _, _, err := Pull(context.Background(), cs, r.Ref("busybox@"+target.Digest.String()), Options{})
	if err != nil || again.Digest != target.Digest {
		t.Fatalf("pull by digest: %v, %v", again, err)
	}
	target, m, cfg, err = Pull(context.Background(), cs, r.Ref("docker/busybox:v2"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, cs, docker, target, m, cfg)
	if target.MediaType != MediaTypeDockerManifest || m.Layers[0].MediaType != MediaTypeDockerLayerGzip {
		t.Fatalf("docker image: target %s layer %s", target.MediaType, m.Layers[0].MediaType)
	}
}

func TestPullImages(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	for name, img := range map[string]*registry.Image{
		"zstd":     registry.ZstdImage(t),
		"many":     registry.ManyLayersImage(t, 55),
		"whiteout": registry.WhiteoutImage(t),
		"hardlink": registry.HardlinkImage(t),
		"device":   registry.DeviceImage(t),
	} {
		t.Run(name, func(t *testing.T) {
			registry.Push(t, r, name+":latest", img)
			cs := newStore(t)
			target, m, cfg, err := Pull(context.Background(), cs, r.Ref(name+":latest"), Options{MaxConcurrent: 8})
			if err != nil {
				t.Fatal(err)
			}
			checkPulled(t, cs, img, target, m, cfg)
		})
	}
}

func TestPullLarge(t *testing.T) {
	registry.RequireLarge(t)
	r := registry.Start(t, registry.Options{})
	img := registry.LargeImage(t, 7)
	registry.Push(t, r, "large:latest", img)
	cs := newStore(t)
	target, m, cfg, err := Pull(context.Background(), cs, r.Ref("large:latest"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, cs, img, target, m, cfg)
	if err := cs.Verify(context.Background(), m.Layers[0].Digest); err != nil {
		t.Fatal(err)
	}
}

func TestPullAuth(t *testing.T) {
	r := registry.Start(t, registry.Options{Auth: true})
	img := registry.PushBusybox(t, r, "private/busybox:1")
	ref := r.Ref("private/busybox:1")
	for _, tc := range []struct {
		name  string
		creds func(string) (string, string, error)
		ok    bool
	}{
		{"good password", StaticCredentials(map[string][2]string{r.Host(): {r.User, r.Password}}), true},
		{"docker config", DockerCredentials(writeDockerConfig(t, r.Host(), r.User, r.Password)), true},
		{"bad password", StaticCredentials(map[string][2]string{r.Host(): {r.User, "wrong"}}), false},
		{"anonymous", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := newStore(t)
			target, m, cfg, err := Pull(context.Background(), cs, ref, Options{Credentials: tc.creds})
			if tc.ok {
				if err != nil {
					t.Fatal(err)
				}
				checkPulled(t, cs, img, target, m, cfg)
				return
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), r.Host()) {
				t.Fatalf("err = %v; want ErrUnauthorized naming %s", err, r.Host())
			}
		})
	}
}

func writeDockerConfig(t *testing.T, host, user, pass string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.json")
	data := fmt.Sprintf(`{"auths":{"http://%s":{"username":%q,"password":%q}}}`, host, user, pass)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPullTLS(t *testing.T) {
	r := registry.Start(t, registry.Options{TLS: true, Auth: true})
	img := registry.PushBusybox(t, r, "busybox:tls")
	creds := StaticCredentials(map[string][2]string{r.Host(): {r.User, r.Password}})
	cs := newStore(t)
	target, m, cfg, err := Pull(context.Background(), cs, r.Ref("busybox:tls"), Options{CAFile: r.CAFile(), Credentials: creds})
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, cs, img, target, m, cfg)

	_, _, _, err = Pull(context.Background(), newStore(t), r.Ref("busybox:tls"), Options{Credentials: creds})
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("without the CA: err = %v; want a certificate error", err)
	}
}

func TestPullMirror(t *testing.T) {
	mirror := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, mirror, "pause:3.10")
	dir := t.TempDir()
	hostDir := filepath.Join(dir, "registry.k8s.io")
	if err := os.MkdirAll(hostDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The origin is unreachable (nothing listens on port 1): only the
	// mirror answers.
	cfg := fmt.Sprintf("server = \"https://127.0.0.1:1\"\n\n[host.\"http://%s\"]\n  capabilities = [\"pull\", \"resolve\"]\n", mirror.Host())
	if err := os.WriteFile(filepath.Join(hostDir, HostsFile), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	hosts, err := LoadHosts(dir)
	if err != nil {
		t.Fatal(err)
	}
	cs := newStore(t)
	target, m, c, err := Pull(context.Background(), cs, "registry.k8s.io/pause:3.10", Options{Hosts: hosts})
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, cs, img, target, m, c)

	// A tag the mirror lacks falls through to the origin, and the error
	// names both.
	_, _, _, err = Pull(context.Background(), newStore(t), "registry.k8s.io/pause:9.99", Options{Hosts: hosts, MaxRetries: 1})
	t.Logf("error: %v", err)
	if err == nil || !strings.Contains(err.Error(), mirror.Host()) || !strings.Contains(err.Error(), "origin 127.0.0.1:1: ") || !errdefs.IsNotFound(err) {
		t.Fatalf("err = %v; want ErrNotFound naming mirror and origin", err)
	}
}

func TestPullMultiArch(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	idx := registry.PushMultiArch(t, r, "multi:latest")
	want := idx.Digest
	cs := newStore(t)
	for _, p := range []ocispec.Platform{
		{OS: "linux", Architecture: "amd64"},
		{OS: "linux", Architecture: "arm64"},
		{OS: "linux", Architecture: "arm", Variant: "v7"},
		{OS: "linux", Architecture: "arm", Variant: "v6"},
	} {
		target, m, cfg, err := Pull(context.Background(), cs, r.Ref("multi:latest"), Options{Platform: p})
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		if target.Digest.String() != want.String() || !IsIndex(target.MediaType) {
			t.Fatalf("%v: target %+v, want the index %s", p, target, want)
		}
		if !MatchPlatform(p, ocispec.Platform{OS: cfg.OS, Architecture: cfg.Architecture, Variant: cfg.Variant}) {
			t.Fatalf("%v: got config for %s/%s/%s", p, cfg.OS, cfg.Architecture, cfg.Variant)
		}
		wantLayers := 1
		if p.Architecture == "amd64" {
			wantLayers = 2
		}
		if len(m.Layers) != wantLayers {
			t.Fatalf("%v: %d layers, want %d", p, len(m.Layers), wantLayers)
		}
	}
	_, _, _, err := Pull(context.Background(), cs, r.Ref("multi:latest"), Options{Platform: ocispec.Platform{OS: "linux", Architecture: "s390x"}})
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "s390x") {
		t.Fatalf("missing platform: err = %v", err)
	}
}

func TestPullNotFound(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	registry.PushBusybox(t, r, "busybox:latest")
	for _, ref := range []string{"busybox:nope", "nothere:latest"} {
		_, _, _, err := Pull(context.Background(), newStore(t), r.Ref(ref), Options{})
		t.Logf("error: %v", err)
		if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), r.Ref(ref)) || !strings.Contains(err.Error(), r.Host()) {
			t.Fatalf("%s: err = %v; want ErrNotFound naming the ref and host", ref, err)
		}
	}
}

func TestPullResume(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	ld, size := img.Layers[0].Digest, img.Layers[0].Size
	p := remotetest.New(t, r.URL())
	p.Add(remotetest.Rule{Match: remotetest.Blob(ld.String()), Times: 1, Cut: size / 2})
	cs := newStore(t)
	target, m, cfg, err := Pull(context.Background(), cs, p.Ref("busybox:latest"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkPulled(t, cs, img, target, m, cfg)
	if n := p.Gets(ld.String()); n != 2 {
		t.Fatalf("layer fetched %d times, want 2 (cut, then resumed)", n)
	}
	if rg := p.Ranges(ld.String()); len(rg) != 2 || rg[0] != "" || rg[1] == "bytes=0-" || !strings.HasPrefix(rg[1], "bytes=") {
		t.Fatalf("Range headers %q; want none, then one resuming past 0", rg)
	}
}

func TestPullResumeSeededIngest(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	l := img.Layers[0]
	ld, size := l.Digest, l.Size
	rc, err := l.Compressed()
	if err != nil {
		t.Fatal(err)
	}
	half := make([]byte, size/2)
	if _, err := io.ReadFull(rc, half); err != nil {
		t.Fatal(err)
	}
	cs := newStore(t)
	desc := ocispec.Descriptor{Digest: ld, Size: size}
	w, err := cs.Writer(context.Background(), "fetch-"+ld.String(), desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(half); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	p := remotetest.New(t, r.URL())
	if _, _, _, err := Pull(context.Background(), cs, p.Ref("busybox:latest"), Options{}); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("bytes=%d-", size/2)
	if rg := p.Ranges(ld.String()); len(rg) != 1 || rg[0] != want {
		t.Fatalf("Range headers %q; want [%s]", rg, want)
	}
}

func TestPullConcurrentOnce(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	registry.Push(t, r, "many:latest", registry.ManyLayersImage(t, 12))
	p := remotetest.New(t, r.URL())
	cs := newStore(t)
	var wg sync.WaitGroup
	errs := make([]error, 5)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, _, errs[i] = Pull(context.Background(), cs, p.Ref("many:latest"), Options{})
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	gets := p.AllGets()
	if len(gets) != 13 {
		t.Fatalf("%d distinct blobs fetched, want 13 (12 layers + config)", len(gets))
	}
	for d, n := range gets {
		if n != 1 {
			t.Errorf("blob %s fetched %d times, want once", d, n)
		}
	}
}

func TestPullWrongDigest(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	ld := img.Layers[0].Digest
	p := remotetest.New(t, r.URL())
	p.Add(remotetest.Rule{Match: remotetest.Blob(ld.String()), Corrupt: true})
	cs := newStore(t)
	_, _, _, err := Pull(context.Background(), cs, p.Ref("busybox:latest"), Options{})
	t.Logf("error: %v", err)
	if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), ld.String()) || !strings.Contains(err.Error(), "content has digest sha256:") {
		t.Fatalf("err = %v; want ErrInvalidArgument naming expected and actual digests", err)
	}
	if _, err := cs.Info(context.Background(), ld); !errdefs.IsNotFound(err) {
		t.Fatalf("corrupt layer visible in the store: %v", err)
	}
	// The registry stops lying: the retry completes.
	p.Clear()
	if _, _, _, err := Pull(context.Background(), cs, p.Ref("busybox:latest"), Options{}); err != nil {
		t.Fatal(err)
	}
}

// TestPullLeasesBeforeWriting: Options.Lease hears of every blob (index,
// manifest, config, layers) before it is in the store, and its error fails
// the pull before anything of that blob is written.
func TestPullLeasesBeforeWriting(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	idx := registry.PushMultiArch(t, r, "multi:latest")
	cs := newStore(t)
	ctx := context.Background()
	var mu sync.Mutex
	leased := map[digest.Digest]bool{}
	target, m, _, err := Pull(ctx, cs, r.Ref("multi:latest"), Options{Platform: ocispec.Platform{OS: "linux", Architecture: "arm64"},
		Lease: func(ctx context.Context, d digest.Digest) error {
			mu.Lock()
			defer mu.Unlock()
			if _, err := cs.Info(ctx, d); err == nil && !leased[d] {
				t.Errorf("blob %s was in the store before it was leased", d)
			}
			leased[d] = true
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if target.Digest != idx.Digest {
		t.Fatalf("target %s, want the index %s", target.Digest, idx.Digest)
	}
	var manifest digest.Digest
	for _, d := range idx.Index.Manifests {
		if d.Platform != nil && d.Platform.Architecture == "arm64" {
			manifest = d.Digest
		}
	}
	want := []digest.Digest{idx.Digest, manifest, m.Config.Digest}
	for _, l := range m.Layers {
		want = append(want, l.Digest)
	}
	for _, d := range want {
		if !leased[d] {
			t.Errorf("blob %s was never leased (leased: %v)", d, leased)
		}
	}

	// A lease that fails stops the pull before the blob is written.
	cs2 := newStore(t)
	boom := errors.New("no lease today")
	_, _, _, err = Pull(ctx, cs2, r.Ref("multi:latest"), Options{Lease: func(context.Context, digest.Digest) error { return boom }})
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), idx.Digest.String()) {
		t.Fatalf("pull with a failing lease: %v; want it, naming %s", err, idx.Digest)
	}
	n := 0
	if err := cs2.Walk(ctx, func(content.Info) error { n++; return nil }); err != nil || n != 0 {
		t.Fatalf("%d blobs written although their lease failed (%v)", n, err)
	}
}
