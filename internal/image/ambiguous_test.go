package image

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/test/registry"
)

func whoImage(t *testing.T, who string, docker bool) *registry.Image {
	t.Helper()
	l, err := registry.NewLayer([]registry.File{{Name: "who", Data: []byte(who)}}, registry.Gzip)
	if err != nil {
		t.Fatal(err)
	}
	img, err := registry.NewImage(registry.Platform{}, docker, []string{"/bin/sh"}, l)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// platformEntry is the index entry of body (media type mt) for this host.
func platformEntry(mt string, body []byte) ocispec.Descriptor {
	p := remote.DefaultPlatform()
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(body), Size: int64(len(body)), Platform: &p}
}

// doc is a schema 2 document with mediaType mt ("": none) and the given
// name, value pairs.
func doc(t *testing.T, mt string, pairs ...any) []byte {
	t.Helper()
	fields := map[string]any{"schemaVersion": 2}
	if mt != "" {
		fields["mediaType"] = mt
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		fields[pairs[i].(string)] = pairs[i+1]
	}
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ambiguousDoc is image a as a manifest and b as an index, in one document
// without a mediaType.
func ambiguousDoc(t *testing.T, a, b *registry.Image) []byte {
	return doc(t, "", "config", a.Manifest.Config, "layers", a.Manifest.Layers,
		"manifests", []ocispec.Descriptor{platformEntry(b.MediaType, b.ManifestJSON)})
}

func indexDoc(t *testing.T, mt string, entries ...ocispec.Descriptor) []byte {
	return doc(t, mt, "manifests", entries)
}

func TestResolveChecksDocuments(t *testing.T) {
	ctx := context.Background()
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	store := func(body []byte) digest.Digest {
		t.Helper()
		d := digest.FromBytes(body)
		if err := cs.Fetch(ctx, ocispec.Descriptor{Digest: d, Size: int64(len(body))}, func(w *content.Writer) error {
			_, err := w.Write(body)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return d
	}
	a, b, dk := whoImage(t, "A-benign", false), whoImage(t, "B-other", false), whoImage(t, "docker", true)
	for _, img := range []*registry.Image{a, b, dk} {
		store(img.ManifestJSON)
		store(img.ConfigJSON)
	}
	amb := ambiguousDoc(t, a, b)
	store(amb)
	// A's manifest saying it is an index.
	liar := doc(t, ocispec.MediaTypeImageIndex, "config", a.Manifest.Config, "layers", a.Manifest.Layers)
	store(liar)
	desc := func(mt string, body []byte) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: mt, Digest: store(body), Size: int64(len(body))}
	}
	p := remote.DefaultPlatform()
	inner := indexDoc(t, "", platformEntry(b.MediaType, b.ManifestJSON))
	store(inner)

	for _, tc := range []struct {
		name   string
		target ocispec.Descriptor
		at     []byte // the document the error names
		phrase string
	}{
		{"ambiguous as a manifest", desc(ocispec.MediaTypeImageManifest, amb), amb, "ambiguous document"},
		{"ambiguous as an index", desc(ocispec.MediaTypeImageIndex, amb), amb, "ambiguous document"},
		{"ambiguous as a docker manifest", desc(remote.MediaTypeDockerManifest, amb), amb, "ambiguous document"},
		{"ambiguous in an index", desc(ocispec.MediaTypeImageIndex, indexDoc(t, ocispec.MediaTypeImageIndex, platformEntry(ocispec.MediaTypeImageManifest, amb))), amb, "ambiguous document"},
		{"manifest whose mediaType says index", desc(ocispec.MediaTypeImageManifest, liar), liar, "does not match the document's structure"},
		{"index named as a manifest", desc(ocispec.MediaTypeImageManifest, indexDoc(t, ocispec.MediaTypeImageIndex, platformEntry(b.MediaType, b.ManifestJSON))),
			indexDoc(t, ocispec.MediaTypeImageIndex, platformEntry(b.MediaType, b.ManifestJSON)), "the document is an index"},
		{"index entry naming an index as a manifest", desc(ocispec.MediaTypeImageIndex, indexDoc(t, "", platformEntry(ocispec.MediaTypeImageManifest, inner))), inner, "the document is an index"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := resolve(ctx, cs, tc.target, p)
			if err == nil {
				t.Fatalf("resolved to config %s", r.Parsed.Config.Digest)
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), digest.FromBytes(tc.at).String()) || !strings.Contains(err.Error(), tc.phrase) {
				t.Fatalf("err = %v; want kind %v naming %s and %q", err, errdefs.ErrInvalidArgument, digest.FromBytes(tc.at), tc.phrase)
			}
		})
	}

	// What resolves as before.
	bare := a.ManifestJSON
	for _, tc := range []struct {
		name   string
		target ocispec.Descriptor
		want   *registry.Image
	}{
		{"oci manifest", a.Descriptor(), a},
		{"docker manifest", dk.Descriptor(), dk},
		{"oci index", desc(ocispec.MediaTypeImageIndex, indexDoc(t, ocispec.MediaTypeImageIndex, platformEntry(a.MediaType, bare))), a},
		{"oci index without mediaType", desc(ocispec.MediaTypeImageIndex, indexDoc(t, "", platformEntry(a.MediaType, bare))), a},
		{"docker manifest list", desc(remote.MediaTypeDockerManifestList, indexDoc(t, remote.MediaTypeDockerManifestList, platformEntry(dk.MediaType, dk.ManifestJSON))), dk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := resolve(ctx, cs, tc.target, p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Parsed.Config.Digest != tc.want.ConfigDigest() || r.Manifest.Digest != tc.want.Digest {
				t.Fatalf("resolved manifest %s config %s, want %s %s", r.Manifest.Digest, r.Parsed.Config.Digest, tc.want.Digest, tc.want.ConfigDigest())
			}
		})
	}
}

// TestPullAmbiguousDigest pulls, by digest, a document that is one image
// as a manifest and another as an index: whatever the registry's
// Content-Type, it is refused and no image is recorded.
func TestPullAmbiguousDigest(t *testing.T) {
	a, b := whoImage(t, "A-benign", false), whoImage(t, "B-malicious", false)
	amb := ambiguousDoc(t, a, b)
	ad := digest.FromBytes(amb)
	blobs := map[string][]byte{a.ConfigDigest().String(): a.ConfigJSON, b.ConfigDigest().String(): b.ConfigJSON}
	for _, img := range []*registry.Image{a, b} {
		for _, l := range img.Layers {
			rc, err := l.Compressed()
			if err != nil {
				t.Fatal(err)
			}
			data, err := io.ReadAll(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			blobs[l.Digest.String()] = data
		}
	}
	for _, ct := range []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, remote.MediaTypeDockerManifest, remote.MediaTypeDockerManifestList} {
		t.Run(ct, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p := r.URL.Path
				last := p[strings.LastIndex(p, "/")+1:]
				switch {
				case p == "/v2/":
				case strings.HasSuffix(p, "/manifests/"+ad.String()):
					w.Header().Set("Content-Type", ct)
					_, _ = w.Write(amb)
				case strings.HasSuffix(p, "/manifests/"+b.Digest.String()):
					w.Header().Set("Content-Type", b.MediaType)
					_, _ = w.Write(b.ManifestJSON)
				case strings.Contains(p, "/blobs/") && blobs[last] != nil:
					_, _ = w.Write(blobs[last])
				default:
					http.NotFound(w, r)
				}
			}))
			defer srv.Close()
			s := newService(t)
			ref := strings.TrimPrefix(srv.URL, "http://") + "/app@" + ad.String()
			img, err := s.Pull(context.Background(), "default", ref, remote.Options{MaxRetries: 1})
			if err == nil {
				t.Fatalf("pulled %s as %s, snapshots %v", ref, img.Target.MediaType, img.Snapshots)
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), ad.String()) || !strings.Contains(err.Error(), "ambiguous document") {
				t.Fatalf("err = %v; want kind %v naming %s as ambiguous", err, errdefs.ErrInvalidArgument, ad)
			}
			if imgs, err := s.List(context.Background(), "default"); err != nil || len(imgs) != 0 {
				t.Fatalf("images after a refused pull: %v, %v", imgs, err)
			}
		})
	}
}
