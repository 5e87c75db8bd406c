package spec

import (
	"fmt"
	"strconv"
	"strings"
)

// semver is a parsed SemVer 2.0.0 version (https://semver.org).
type semver struct {
	major, minor, patch uint64
	pre, build          string
}

// parseSemver parses MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD] strictly: numeric
// identifiers have no leading zeros, other identifiers are [0-9A-Za-z-]+.
func parseSemver(s string) (semver, error) {
	bad := func(why string) (semver, error) {
		return semver{}, fmt.Errorf("%q is not a semantic version: %s", s, why)
	}
	var v semver
	rest := s
	if i := strings.IndexByte(rest, '+'); i >= 0 {
		v.build = rest[i+1:]
		rest = rest[:i]
		if !identifiers(v.build, false) {
			return bad("malformed build metadata")
		}
	}
	if i := strings.IndexByte(rest, '-'); i >= 0 {
		v.pre = rest[i+1:]
		rest = rest[:i]
		if !identifiers(v.pre, true) {
			return bad("malformed pre-release")
		}
	}
	parts := strings.Split(rest, ".")
	if len(parts) != 3 {
		return bad("want MAJOR.MINOR.PATCH")
	}
	nums := make([]uint64, 3)
	for i, p := range parts {
		if !numeric(p) {
			return bad(fmt.Sprintf("%q is not a number without leading zeros", p))
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return bad(fmt.Sprintf("%q is out of range", p))
		}
		nums[i] = n
	}
	v.major, v.minor, v.patch = nums[0], nums[1], nums[2]
	return v, nil
}

// numeric reports whether p is a SemVer numeric identifier.
func numeric(p string) bool {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// identifiers reports whether s is a dot-separated list of non-empty
// [0-9A-Za-z-] identifiers; with noLeadingZero, purely numeric ones must
// also have no leading zeros (pre-release rule).
func identifiers(s string, noLeadingZero bool) bool {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		digits := true
		for _, c := range id {
			switch {
			case c >= '0' && c <= '9':
			case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == '-':
				digits = false
			default:
				return false
			}
		}
		if noLeadingZero && digits && !numeric(id) {
			return false
		}
	}
	return true
}
