package remote

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Reference is a parsed image reference.
type Reference struct {
	// Host as written in references and hosts.d ("docker.io" for Docker Hub).
	Host string
	// Repository path ("library/busybox").
	Repository string
	// Tag, empty when the reference is by digest only.
	Tag string
	// Digest, when the reference pins one.
	Digest digest.Digest
}

// String is the canonical form host/repo[:tag][@digest].
func (r Reference) String() string {
	s := r.Host + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + string(r.Digest)
	}
	return s
}

// The distribution reference grammar.
var (
	hostRE      = regexp.MustCompile(`^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[a-fA-F0-9:]+\])(?::[0-9]+)?$`)
	componentRE = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$`)
	tagRE       = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}$`)
)

// maxNameLength bounds host/repository, as distribution does.
const maxNameLength = 255

// ParseReference parses ref with Docker's defaults: docker.io for a
// reference without a registry, library/ for a one-part Docker Hub name,
// latest without a tag or digest. A reference with both a tag and a digest
// is pulled by digest.
func ParseReference(ref string) (Reference, error) {
	bad := func(err error) error {
		return fmt.Errorf("parse reference %q: %w: %w", ref, err, errdefs.ErrInvalidArgument)
	}
	var out Reference
	rest := ref
	if i := strings.Index(rest, "@"); i >= 0 {
		d, err := digest.Parse(rest[i+1:])
		if err != nil {
			return Reference{}, bad(err)
		}
		out.Digest, rest = d, rest[:i]
	}
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		out.Tag, rest = rest[i+1:], rest[:i]
		if !tagRE.MatchString(out.Tag) {
			return Reference{}, bad(fmt.Errorf("tag %q invalid", out.Tag))
		}
	}
	if rest == "" {
		return Reference{}, bad(errors.New("repository name is empty"))
	}
	out.Host, out.Repository = dockerHub, rest
	if first, path, ok := strings.Cut(rest, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		if !hostRE.MatchString(first) {
			return Reference{}, bad(fmt.Errorf("registry %q invalid", first))
		}
		out.Host, out.Repository = first, path
	}
	if out.Host == "index.docker.io" {
		out.Host = dockerHub
	}
	if out.Host == dockerHub && !strings.Contains(out.Repository, "/") {
		out.Repository = "library/" + out.Repository
	}
	for _, c := range strings.Split(out.Repository, "/") {
		if !componentRE.MatchString(c) {
			return Reference{}, bad(fmt.Errorf("repository %q: component %q invalid (lower-case letters, digits and separators)", out.Repository, c))
		}
	}
	if n := len(out.Host) + 1 + len(out.Repository); n > maxNameLength {
		return Reference{}, bad(fmt.Errorf("name is %d characters, more than %d", n, maxNameLength))
	}
	if out.Tag == "" && out.Digest == "" {
		out.Tag = "latest"
	}
	return out, nil
}
