package registry

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestRegistryVariants(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"plain", Options{}},
		{"auth", Options{Auth: true}},
		{"tls", Options{TLS: true}},
		{"tls+auth", Options{TLS: true, Auth: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Start(t, tc.opts)
			img := PushBusybox(t, r, "busybox:latest")
			req, err := http.NewRequest(http.MethodHead, r.URL()+"/v2/busybox/manifests/latest", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", MediaTypeOCIManifest)
			if r.User != "" {
				req.SetBasicAuth(r.User, r.Password)
			}
			resp, err := r.Client().Do(req)
			if err != nil {
				t.Fatalf("head: %v", err)
			}
			resp.Body.Close()
			if got := resp.Header.Get("Docker-Content-Digest"); resp.StatusCode != http.StatusOK || got != img.Digest.String() {
				t.Fatalf("head: status %d digest %q, pushed %s", resp.StatusCode, got, img.Digest)
			}
			req, err = http.NewRequest(http.MethodGet, r.URL()+"/v2/busybox/manifests/latest", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", MediaTypeOCIManifest)
			resp, err = r.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			wantCode := http.StatusOK
			if tc.opts.Auth {
				wantCode = http.StatusUnauthorized
			}
			if resp.StatusCode != wantCode {
				t.Fatalf("anonymous GET: status %d, want %d", resp.StatusCode, wantCode)
			}
			if tc.opts.Auth {
				p := r.Pusher()
				p.Password = "wrong"
				err := p.PushImage(context.Background(), "denied", "latest", img)
				t.Logf("error: %v", err)
				if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "denied:latest") {
					t.Fatalf("push with a wrong password: err = %v; want a 401 naming the image", err)
				}
			}
		})
	}
}

// getJSON fetches a manifest or blob path of r and decodes it into v,
// checking the Content-Type when want is set.
func getJSON(t *testing.T, r *Registry, path, accept, want string, v any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.URL()+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := r.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: status %d: %s", path, resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); want != "" && ct != want {
		t.Fatalf("GET %s: Content-Type %q, want %q", path, ct, want)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

func TestBuilders(t *testing.T) {
	r := Start(t, Options{})
	idx := MultiArchIndex(t)
	if d := PushIndex(t, r, "multi:latest", idx); d != idx.Digest {
		t.Fatalf("PushIndex returned %s, want %s", d, idx.Digest)
	}
	Push(t, r, "zstd:latest", ZstdImage(t))
	Push(t, r, "many:latest", ManyLayersImage(t, 55))
	Push(t, r, "whiteout:latest", WhiteoutImage(t))
	Push(t, r, "hardlink:latest", HardlinkImage(t))
	Push(t, r, "device:latest", DeviceImage(t))
	// Pushing again skips the blobs the registry has.
	Push(t, r, "device:again", DeviceImage(t))
	docker := PushDockerBusybox(t, r, "docker:latest")
	img := ManyLayersImage(t, 55)
	if len(img.Layers) != 55 || len(img.Manifest.Layers) != 55 || len(img.Config.RootFS.DiffIDs) != 55 {
		t.Fatalf("%d layers, want 55", len(img.Layers))
	}
	if again := ManyLayersImage(t, 55); again.Digest != img.Digest {
		t.Fatalf("two builds give %s and %s, want the same digest", img.Digest, again.Digest)
	}

	var ix ocispec.Index
	getJSON(t, r, "/v2/multi/manifests/latest", MediaTypeOCIIndex, MediaTypeOCIIndex, &ix)
	if len(ix.Manifests) != len(MultiArchPlatforms) {
		t.Fatalf("index has %d manifests, want %d", len(ix.Manifests), len(MultiArchPlatforms))
	}
	for i, d := range ix.Manifests {
		p := MultiArchPlatforms[i]
		if d.Platform == nil || d.Platform.Architecture != p.Architecture || d.Platform.Variant != p.Variant || d.Digest != idx.Images[i].Digest {
			t.Fatalf("index entry %d: %+v, want %s digest %s", i, d, p, idx.Images[i].Digest)
		}
		var cfg ocispec.Image
		getJSON(t, r, "/v2/multi/blobs/"+idx.Images[i].ConfigDigest().String(), "", "", &cfg)
		if cfg.Architecture != p.Architecture || cfg.Variant != p.Variant || cfg.Created == nil || !cfg.Created.Equal(Epoch) {
			t.Fatalf("config of %s: %+v", p, cfg)
		}
	}

	var m ocispec.Manifest
	getJSON(t, r, "/v2/docker/manifests/latest", MediaTypeDockerManifest, MediaTypeDockerManifest, &m)
	if m.Config.MediaType != MediaTypeDockerConfig || m.Layers[0].MediaType != MediaTypeDockerLayer || m.Layers[0].Digest != docker.Layers[0].Digest {
		t.Fatalf("docker manifest: %+v", m)
	}
	getJSON(t, r, "/v2/zstd/manifests/latest", MediaTypeOCIManifest, MediaTypeOCIManifest, &m)
	if m.Layers[0].MediaType != MediaTypeOCILayerZstd {
		t.Fatalf("zstd manifest: %+v", m)
	}
}

func TestSplitNameTag(t *testing.T) {
	for _, tc := range []struct {
		in, repo, tag string
		err           bool
	}{
		{"busybox:latest", "busybox", "latest", false},
		{"a/b/c:v1", "a/b/c", "v1", false},
		{"busybox", "busybox", "latest", false},
		{"localhost:5000/x", "localhost:5000/x", "latest", false},
		{":tag", "", "", true},
		{"busybox:", "", "", true},
	} {
		repo, tag, err := SplitNameTag(tc.in)
		if (err != nil) != tc.err || repo != tc.repo || tag != tc.tag {
			t.Errorf("SplitNameTag(%q) = %q, %q, %v; want %q, %q, error %v", tc.in, repo, tag, err, tc.repo, tc.tag, tc.err)
		}
	}
}

func TestLarge(t *testing.T) {
	RequireLarge(t)
	r := Start(t, Options{})
	img := LargeImage(t, 1)
	Push(t, r, "large:latest", img)
	if img.Layers[0].Size <= LargeSize {
		t.Fatalf("layer size %d, want > %d", img.Layers[0].Size, LargeSize)
	}
}
