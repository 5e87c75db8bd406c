package remote

import (
	"fmt"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// The error of an index without the wanted platform names each platform
// once and at most maxListedPlatforms of them, however large the index.
func TestSelectPlatformErrorBounded(t *testing.T) {
	entry := func(arch string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.Digest("sha256:" + strings.Repeat("a", 64)), Platform: &ocispec.Platform{OS: "linux", Architecture: arch}}
	}
	want := ocispec.Platform{OS: "linux", Architecture: "s390x"}

	var many ocispec.Index
	for i := range 20000 {
		many.Manifests = append(many.Manifests, entry(fmt.Sprintf("arch%d", i)))
	}
	_, err := SelectPlatform(many, want)
	if !errdefs.IsNotFound(err) {
		t.Fatalf("err = %v; want ErrNotFound", err)
	}
	if msg := err.Error(); len(msg) > 1024 || !strings.Contains(msg, "linux/arch0, ") || !strings.Contains(msg, "and 19980 more") {
		t.Fatalf("error of %d bytes, want at most 1024 naming 20 platforms and 19980 more: %.300s", len(msg), msg)
	}

	var repeated ocispec.Index
	for i := range 20000 {
		repeated.Manifests = append(repeated.Manifests, entry([]string{"amd64", "arm64"}[i%2]))
	}
	_, err = SelectPlatform(repeated, want)
	if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "(index has linux/amd64, linux/arm64)") {
		t.Fatalf("err = %.300v; want the two distinct platforms listed once", err)
	}

	huge := ocispec.Index{Manifests: []ocispec.Descriptor{entry(strings.Repeat("x", 1<<20))}}
	if _, err = SelectPlatform(huge, want); len(err.Error()) > 1024 {
		t.Fatalf("error of %d bytes for one huge platform name", len(err.Error()))
	}
}
