package remote

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// docImage is a one-layer image whose documents a test writes by hand.
type docImage struct {
	config, layer []byte
	cdesc, ldesc  ocispec.Descriptor
}

func newDocImage(t *testing.T, who string, docker bool) docImage {
	t.Helper()
	im := docImage{layer: []byte("layer of " + who)}
	cfg := ocispec.Image{Platform: DefaultPlatform(), RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(im.layer)}}}
	var err error
	if im.config, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	cmt, lmt := ocispec.MediaTypeImageConfig, ocispec.MediaTypeImageLayer
	if docker {
		cmt, lmt = MediaTypeDockerConfig, MediaTypeDockerLayer
	}
	im.cdesc = ocispec.Descriptor{MediaType: cmt, Digest: digest.FromBytes(im.config), Size: int64(len(im.config))}
	im.ldesc = ocispec.Descriptor{MediaType: lmt, Digest: digest.FromBytes(im.layer), Size: int64(len(im.layer))}
	return im
}

// manifest is im's manifest with mediaType mt ("": no mediaType field).
func (im docImage) manifest(t *testing.T, mt string) []byte {
	t.Helper()
	m := ocispec.Manifest{MediaType: mt, Config: im.cdesc, Layers: []ocispec.Descriptor{im.ldesc}}
	m.SchemaVersion = 2
	return mustJSON(t, m)
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// entry is the index entry of body, with mediaType mt, for this platform.
func entry(mt string, body []byte) ocispec.Descriptor {
	p := DefaultPlatform()
	return ocispec.Descriptor{MediaType: mt, Digest: digest.FromBytes(body), Size: int64(len(body)), Platform: &p}
}

// indexOf is an index with mediaType mt ("": none) of entries.
func indexOf(t *testing.T, mt string, entries ...ocispec.Descriptor) []byte {
	t.Helper()
	idx := ocispec.Index{MediaType: mt, Manifests: entries}
	idx.SchemaVersion = 2
	return mustJSON(t, idx)
}

// ambiguous is a document that is image a as a manifest and image b's
// manifest (bm) as an index, with mediaType mt ("": none).
func ambiguous(t *testing.T, mt string, a docImage, bm []byte) []byte {
	t.Helper()
	return mustJSON(t, map[string]any{
		"schemaVersion": 2, "mediaType": mt,
		"config": a.cdesc, "layers": []ocispec.Descriptor{a.ldesc},
		"manifests": []ocispec.Descriptor{entry(ocispec.MediaTypeImageManifest, bm)},
	})
}

// served is a document a docRegistry answers with, and its Content-Type
// ("" sends none).
type served struct {
	ct   string
	body []byte
}

// docRegistry serves docs (by tag or digest) and the blobs of images on
// 127.0.0.1, and returns its host.
func docRegistry(t *testing.T, docs map[string]served, images ...docImage) string {
	t.Helper()
	blobs := map[string][]byte{}
	for _, im := range images {
		blobs[im.cdesc.Digest.String()] = im.config
		blobs[im.ldesc.Digest.String()] = im.layer
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if p == "/v2/" {
			return
		}
		if _, ref, ok := strings.Cut(p, "/manifests/"); ok {
			d, ok := docs[ref]
			if !ok {
				http.NotFound(w, r)
				return
			}
			w.Header()["Content-Type"] = nil // no sniffing
			if d.ct != "" {
				w.Header().Set("Content-Type", d.ct)
			}
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(d.body).String())
			_, _ = w.Write(d.body)
			return
		}
		if _, ref, ok := strings.Cut(p, "/blobs/"); ok && blobs[ref] != nil {
			_, _ = w.Write(blobs[ref])
			return
		}
		http.NotFound(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

var documentMediaTypes = []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex, MediaTypeDockerManifest, MediaTypeDockerManifestList}

func TestPullAmbiguousDocument(t *testing.T) {
	a, b := newDocImage(t, "A", false), newDocImage(t, "B", false)
	bm := b.manifest(t, ocispec.MediaTypeImageManifest)
	ctx := context.Background()
	for _, bodyType := range append([]string{""}, documentMediaTypes...) {
		amb := ambiguous(t, bodyType, a, bm)
		ad := digest.FromBytes(amb).String()
		for _, ct := range append([]string{"", "application/json"}, documentMediaTypes...) {
			t.Run("mediaType="+bodyType+",Content-Type="+ct, func(t *testing.T) {
				host := docRegistry(t, map[string]served{ad: {ct, amb}, "tag": {ct, amb}, string(entry("", bm).Digest): {ocispec.MediaTypeImageManifest, bm}}, a, b)
				for _, ref := range []string{host + "/x@" + ad, host + "/x:tag"} {
					cs := newStore(t)
					_, m, _, err := Pull(ctx, cs, ref, Options{MaxRetries: 1})
					if err == nil {
						t.Fatalf("pull %s: pulled the ambiguous document as the image of config %s", ref, m.Config.Digest)
					}
					wantErr(t, err, errdefs.ErrInvalidArgument, ad, "ambiguous document")
					for _, d := range []digest.Digest{a.cdesc.Digest, a.ldesc.Digest, b.cdesc.Digest, b.ldesc.Digest} {
						if blobs(t, cs)[d.String()] {
							t.Fatalf("blob %s of an image the ambiguous document names was fetched", d)
						}
					}
				}
			})
		}
	}
	// As an index's child, fetched or already in the store.
	for _, mt := range []string{ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex} {
		t.Run("child "+mt, func(t *testing.T) {
			amb := ambiguous(t, "", a, bm)
			ad := digest.FromBytes(amb).String()
			top := indexOf(t, ocispec.MediaTypeImageIndex, entry(mt, amb))
			docs := map[string]served{"tag": {ocispec.MediaTypeImageIndex, top}, ad: {mt, amb}, string(entry("", bm).Digest): {ocispec.MediaTypeImageManifest, bm}}
			host := docRegistry(t, docs, a, b)
			cs := newStore(t)
			_, _, _, err := Pull(ctx, cs, host+"/x:tag", Options{MaxRetries: 1})
			wantErr(t, err, errdefs.ErrInvalidArgument, ad, "ambiguous document")
			// As a blob already in the store.
			if err := (&puller{cs: cs}).put(ctx, entry(mt, amb), amb); err != nil {
				t.Fatal(err)
			}
			_, _, _, err = Pull(ctx, cs, host+"/x:tag", Options{MaxRetries: 1})
			wantErr(t, err, errdefs.ErrInvalidArgument, ad, "ambiguous document")
		})
	}
}

func TestPullDocumentMediaTypeMismatch(t *testing.T) {
	a, b := newDocImage(t, "A", false), newDocImage(t, "B", false)
	am := a.manifest(t, ocispec.MediaTypeImageManifest)
	bm := b.manifest(t, ocispec.MediaTypeImageManifest)
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// top is served for tag "tag", child (if any) by its digest with
		// the Content-Type its entry in top says.
		top          served
		child        []byte
		childEntryMT string
		at           []byte // the document to name in the error
		names        []string
	}{
		{name: "index body, manifest Content-Type", top: served{ocispec.MediaTypeImageManifest, indexOf(t, ocispec.MediaTypeImageIndex, entry(ocispec.MediaTypeImageManifest, bm))},
			names: []string{`claimed "` + ocispec.MediaTypeImageManifest + `"`, "an index"}},
		{name: "manifest body, index Content-Type", top: served{ocispec.MediaTypeImageIndex, am},
			names: []string{`claimed "` + ocispec.MediaTypeImageIndex + `"`, "a manifest"}},
		{name: "docker list body, docker manifest Content-Type", top: served{MediaTypeDockerManifest, indexOf(t, MediaTypeDockerManifestList, entry(ocispec.MediaTypeImageManifest, bm))},
			names: []string{`claimed "` + MediaTypeDockerManifest + `"`}},
		{name: "manifest without mediaType, index Content-Type", top: served{ocispec.MediaTypeImageIndex, a.manifest(t, "")},
			names: []string{`claimed "` + ocispec.MediaTypeImageIndex + `"`}},
		{name: "index mediaType on a manifest", top: served{ocispec.MediaTypeImageManifest, a.manifest(t, ocispec.MediaTypeImageIndex)},
			names: []string{"does not match the document's structure"}},
		{name: "entry manifest, child index", childEntryMT: ocispec.MediaTypeImageManifest, child: indexOf(t, ocispec.MediaTypeImageIndex, entry(ocispec.MediaTypeImageManifest, bm)),
			names: []string{`claimed "` + ocispec.MediaTypeImageManifest + `"`, "an index"}},
		{name: "entry index, child manifest", childEntryMT: ocispec.MediaTypeImageIndex, child: a.manifest(t, ""),
			names: []string{`claimed "` + ocispec.MediaTypeImageIndex + `"`, "a manifest"}},
		{name: "entry manifest, child says index", childEntryMT: ocispec.MediaTypeImageManifest, child: a.manifest(t, ocispec.MediaTypeImageIndex),
			names: []string{"does not match the document's structure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs := map[string]served{string(entry("", bm).Digest): {ocispec.MediaTypeImageManifest, bm}}
			at := tc.top.body
			if tc.child != nil {
				at = tc.child
				// The registry's Content-Type agrees with the entry: the
				// body alone tells.
				docs[digest.FromBytes(tc.child).String()] = served{tc.childEntryMT, tc.child}
				tc.top = served{ocispec.MediaTypeImageIndex, indexOf(t, ocispec.MediaTypeImageIndex, entry(tc.childEntryMT, tc.child))}
			}
			docs["tag"] = tc.top
			host := docRegistry(t, docs, a, b)
			cs := newStore(t)
			_, m, _, err := Pull(ctx, cs, host+"/x:tag", Options{MaxRetries: 1})
			if err == nil {
				t.Fatalf("pulled the image of config %s", m.Config.Digest)
			}
			wantErr(t, err, errdefs.ErrInvalidArgument, append([]string{digest.FromBytes(at).String()}, tc.names...)...)
			for _, d := range []digest.Digest{a.ldesc.Digest, b.ldesc.Digest} {
				if blobs(t, cs)[d.String()] {
					t.Fatalf("layer %s fetched", d)
				}
			}
		})
	}
}

func TestPullDocumentKinds(t *testing.T) {
	oci, docker := newDocImage(t, "oci", false), newDocImage(t, "docker", true)
	om, dm := oci.manifest(t, ocispec.MediaTypeImageManifest), docker.manifest(t, MediaTypeDockerManifest)
	bare := oci.manifest(t, "")
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		top    served
		im     docImage
		wantMT string // of the target
	}{
		{"oci manifest", served{ocispec.MediaTypeImageManifest, om}, oci, ocispec.MediaTypeImageManifest},
		{"oci manifest, generic Content-Type", served{"application/json", om}, oci, ocispec.MediaTypeImageManifest},
		{"oci manifest without mediaType", served{ocispec.MediaTypeImageManifest, bare}, oci, ocispec.MediaTypeImageManifest},
		{"oci manifest without mediaType, generic Content-Type", served{"application/json", bare}, oci, ocispec.MediaTypeImageManifest},
		{"oci manifest without mediaType or Content-Type", served{"", bare}, oci, ocispec.MediaTypeImageManifest},
		{"docker manifest", served{MediaTypeDockerManifest, dm}, docker, MediaTypeDockerManifest},
		{"docker manifest, OCI Content-Type", served{ocispec.MediaTypeImageManifest, dm}, docker, MediaTypeDockerManifest},
		{"oci index", served{ocispec.MediaTypeImageIndex, indexOf(t, ocispec.MediaTypeImageIndex, entry(ocispec.MediaTypeImageManifest, om))}, oci, ocispec.MediaTypeImageIndex},
		{"oci index without mediaType", served{ocispec.MediaTypeImageIndex, indexOf(t, "", entry(ocispec.MediaTypeImageManifest, bare))}, oci, ocispec.MediaTypeImageIndex},
		{"oci index without mediaType or Content-Type", served{"", indexOf(t, "", entry(ocispec.MediaTypeImageManifest, om))}, oci, ocispec.MediaTypeImageIndex},
		{"docker manifest list", served{MediaTypeDockerManifestList, indexOf(t, MediaTypeDockerManifestList, entry(MediaTypeDockerManifest, dm))}, docker, MediaTypeDockerManifestList},
		{"nested index", served{ocispec.MediaTypeImageIndex, indexOf(t, ocispec.MediaTypeImageIndex, entry(ocispec.MediaTypeImageIndex, indexOf(t, "", entry(ocispec.MediaTypeImageManifest, om))))}, oci, ocispec.MediaTypeImageIndex},
	} {
		t.Run(tc.name, func(t *testing.T) {
			docs := map[string]served{"tag": tc.top}
			for _, body := range [][]byte{om, dm, bare, indexOf(t, "", entry(ocispec.MediaTypeImageManifest, om))} {
				docs[digest.FromBytes(body).String()] = served{"", body}
			}
			host := docRegistry(t, docs, oci, docker)
			cs := newStore(t)
			target, m, cfg, err := Pull(ctx, cs, host+"/x:tag", Options{MaxRetries: 1})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("target %s %s, config %s", target.MediaType, target.Digest, m.Config.Digest)
			if target.MediaType != tc.wantMT || target.Digest != digest.FromBytes(tc.top.body) {
				t.Fatalf("target %s %s, want %s %s", target.MediaType, target.Digest, tc.wantMT, digest.FromBytes(tc.top.body))
			}
			if m.Config.Digest != tc.im.cdesc.Digest || len(cfg.RootFS.DiffIDs) != 1 || !blobs(t, cs)[tc.im.ldesc.Digest.String()] {
				t.Fatalf("pulled config %s (%d diff_ids), want %s and its layer", m.Config.Digest, len(cfg.RootFS.DiffIDs), tc.im.cdesc.Digest)
			}
		})
	}
}
