package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// parseProcCgroup parses /proc/<pid>/cgroup ("id:controllers:path" lines)
// into controller -> path; the v2 line ("0::/path") gets the key "".
func parseProcCgroup(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("malformed cgroup line %q: %w", line, errdefs.ErrInvalidArgument)
		}
		if parts[1] == "" {
			if parts[0] == "0" {
				out[""] = parts[2]
			}
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out, sc.Err()
}

// isSystemdPath reports whether p looks like systemd's "slice:prefix:name".
func isSystemdPath(p string) bool {
	return !strings.HasPrefix(p, "/") && strings.Count(p, ":") == 2
}

// joinInside joins p onto base (both slash paths, base absolute) and fails
// if ".." components would climb above "/".
func joinInside(base, p string) (string, error) {
	parts := strings.Split(strings.Trim(base, "/"), "/")
	if parts[0] == "" {
		parts = parts[:0]
	}
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
		case "..":
			if len(parts) == 0 {
				return "", fmt.Errorf("cgroups path %q escapes the hierarchy root: %w", p, errdefs.ErrInvalidArgument)
			}
			parts = parts[:len(parts)-1]
		default:
			parts = append(parts, c)
		}
	}
	return "/" + strings.Join(parts, "/"), nil
}

// resolvePaths maps every mounted controller to the container's directory.
// self is the parsed /proc/self/cgroup of the caller. An absolute
// cgroupsPath is taken relative to each hierarchy's root (the mount point);
// a relative one relative to the caller's own cgroup in that hierarchy; an
// empty one is "/<id>".
func resolvePaths(mounts []mountInfo, self map[string]string, cgroupsPath, id string) (map[string]string, error) {
	if cgroupsPath == "" {
		if id == "" || strings.Contains(id, "/") || id == "." || id == ".." {
			return nil, fmt.Errorf("container id %q cannot name a cgroup: %w", id, errdefs.ErrInvalidArgument)
		}
		cgroupsPath = "/" + id
	}
	if isSystemdPath(cgroupsPath) {
		return nil, fmt.Errorf("linux.cgroupsPath %q: systemd cgroup driver: %w", cgroupsPath, errdefs.ErrNotImplemented)
	}
	if _, err := joinInside("/", cgroupsPath); err != nil && path.IsAbs(cgroupsPath) {
		return nil, fmt.Errorf("linux.cgroupsPath: %w", err)
	}
	paths := map[string]string{}
	add := func(key string, m mountInfo) error {
		if _, ok := paths[key]; ok {
			return nil // first mount of a hierarchy wins
		}
		base := "/"
		if !path.IsAbs(cgroupsPath) {
			cur, ok := self[key]
			if !ok {
				return fmt.Errorf("linux.cgroupsPath %q: no %q entry in /proc/self/cgroup: %w", cgroupsPath, displayKey(key), errdefs.ErrFailedPrecondition)
			}
			// cur is relative to the hierarchy root; strip the mount's root.
			rel, inside := cur, true
			if m.root != "/" {
				inside = cur == m.root || strings.HasPrefix(cur, m.root+"/")
				rel = strings.TrimPrefix(cur, m.root)
			}
			if !inside {
				return fmt.Errorf("linux.cgroupsPath %q: own %s cgroup %q is outside the mount root %q: %w", cgroupsPath, displayKey(key), cur, m.root, errdefs.ErrFailedPrecondition)
			}
			base = "/" + strings.Trim(rel, "/")
		}
		p, err := joinInside(base, cgroupsPath)
		if err != nil {
			return fmt.Errorf("linux.cgroupsPath: %w", err)
		}
		if p == "/" {
			return fmt.Errorf("linux.cgroupsPath %q: resolves to the %s hierarchy root: %w", cgroupsPath, displayKey(key), errdefs.ErrInvalidArgument)
		}
		paths[key] = path.Join(m.mountpoint, p)
		return nil
	}
	for _, m := range mounts {
		switch m.fstype {
		case "cgroup":
			for _, c := range m.controllers() {
				if err := add(c, m); err != nil {
					return nil, err
				}
			}
		case "cgroup2":
			if err := add("", m); err != nil {
				return nil, err
			}
		}
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("resolve cgroups path: no cgroup hierarchy mounted: %w", errdefs.ErrFailedPrecondition)
	}
	return paths, nil
}

func displayKey(k string) string {
	if k == "" {
		return "unified"
	}
	return k
}

func readSelfCgroup() (map[string]string, error) {
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil, fmt.Errorf("read own cgroup: %w", err)
	}
	defer f.Close()
	m, err := parseProcCgroup(f)
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/cgroup: %w", err)
	}
	return m, nil
}
