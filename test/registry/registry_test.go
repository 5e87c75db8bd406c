package registry

import (
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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
			want, err := img.Digest()
			if err != nil {
				t.Fatal(err)
			}
			ref, err := name.ParseReference(r.Ref("busybox:latest"))
			if err != nil {
				t.Fatal(err)
			}
			desc, err := remote.Head(ref, r.RemoteOptions()...)
			if err != nil {
				t.Fatalf("head %s: %v", ref, err)
			}
			if desc.Digest != want {
				t.Fatalf("digest %s, pushed %s", desc.Digest, want)
			}
			req, err := http.NewRequest(http.MethodGet, r.URL()+"/v2/busybox/manifests/latest", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Accept", "application/vnd.oci.image.manifest.v1+json")
			resp, err := r.Client().Do(req)
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
		})
	}
}

func TestBuilders(t *testing.T) {
	r := Start(t, Options{})
	PushIndex(t, r, "multi:latest", MultiArchIndex(t))
	Push(t, r, "zstd:latest", ZstdImage(t))
	Push(t, r, "many:latest", ManyLayersImage(t, 55))
	Push(t, r, "whiteout:latest", WhiteoutImage(t))
	Push(t, r, "hardlink:latest", HardlinkImage(t))
	Push(t, r, "device:latest", DeviceImage(t))
	PushDockerBusybox(t, r, "docker:latest")
	img := ManyLayersImage(t, 55)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != 55 {
		t.Fatalf("%d layers, want 55", len(layers))
	}
}

func TestLarge(t *testing.T) {
	RequireLarge(t)
	r := Start(t, Options{})
	img := LargeImage(t, 1)
	Push(t, r, "large:latest", img)
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	size, err := layers[0].Size()
	if err != nil {
		t.Fatal(err)
	}
	if size <= LargeSize {
		t.Fatalf("layer size %d, want > %d", size, LargeSize)
	}
}
