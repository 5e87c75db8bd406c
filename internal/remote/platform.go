package remote

import (
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// DefaultPlatform is the host's platform (linux/arm is taken as v7).
func DefaultPlatform() ocispec.Platform {
	p := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	p.Variant = normalizeVariant(p.Architecture, "")
	return p
}

// ParsePlatform parses os/arch[/variant].
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("platform %q: want os/arch[/variant]: %w", s, errdefs.ErrInvalidArgument)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

func normalizeVariant(arch, variant string) string {
	switch arch {
	case "arm64":
		if variant == "" {
			return "v8"
		}
	case "arm":
		if variant == "" {
			return "v7"
		}
	case "amd64":
		if variant == "v1" {
			return ""
		}
	}
	return variant
}

// MatchPlatform reports whether have (an index entry's platform) serves
// want: same OS and architecture, and the same variant once defaults are
// filled in (arm64 means v8, arm v7, amd64 v1).
func MatchPlatform(want, have ocispec.Platform) bool {
	return want.OS == have.OS && want.Architecture == have.Architecture &&
		normalizeVariant(want.Architecture, want.Variant) == normalizeVariant(have.Architecture, have.Variant)
}

// maxListedPlatforms caps how many platforms SelectPlatform's error names;
// maxPlatformName caps each name.
const (
	maxListedPlatforms = 20
	maxPlatformName    = 64
)

// SelectPlatform returns the first manifest of idx for platform want; an
// index without a match is an ErrNotFound error listing the distinct
// platforms it holds (the first maxListedPlatforms, then how many more).
func SelectPlatform(idx ocispec.Index, want ocispec.Platform) (ocispec.Descriptor, error) {
	var have []string
	seen := map[string]bool{}
	for _, d := range idx.Manifests {
		if d.Platform == nil {
			continue
		}
		if MatchPlatform(want, *d.Platform) && (IsManifest(d.MediaType) || IsIndex(d.MediaType)) {
			return d, nil
		}
		s := platformString(*d.Platform)
		if len(s) > maxPlatformName {
			s = s[:maxPlatformName] + "..."
		}
		if !seen[s] {
			seen[s] = true
			if len(have) < maxListedPlatforms {
				have = append(have, s)
			}
		}
	}
	list := strings.Join(have, ", ")
	if more := len(seen) - len(have); more > 0 {
		list += fmt.Sprintf(" and %d more", more)
	}
	return ocispec.Descriptor{}, fmt.Errorf("no manifest for platform %s (index has %s): %w", platformString(want), list, errdefs.ErrNotFound)
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}
