// Package report defines what the probe binary prints: the view of the
// process from inside a container. The probe (test/probe) fills a Report and
// prints it as one JSON object; end-to-end tests decode it with Parse.
// It imports only the standard library so that the probe stays small and
// static.
package report

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Report is what the probe saw when it ran `report`.
type Report struct {
	Args       []string `json:"args"`
	PID        int      `json:"pid"`
	PPID       int      `json:"ppid"`
	UID        int      `json:"uid"`
	GID        int      `json:"gid"`
	EUID       int      `json:"euid"`
	EGID       int      `json:"egid"`
	Groups     []int    `json:"groups"`
	Umask      uint32   `json:"umask"`
	Cwd        string   `json:"cwd"`
	Env        []string `json:"env"`
	Hostname   string   `json:"hostname"`
	Domainname string   `json:"domainname"`

	// Caps holds the CapInh/CapPrm/CapEff/CapBnd/CapAmb lines of
	// /proc/self/status keyed by those names, as the kernel prints them
	// (16 hex digits).
	Caps           map[string]string `json:"caps"`
	NoNewPrivs     int               `json:"noNewPrivs"`
	Seccomp        int               `json:"seccomp"`
	SeccompFilters int               `json:"seccompFilters"`

	// Rlimits is keyed by the runtime-spec names (RLIMIT_NOFILE, ...).
	Rlimits     map[string]Rlimit `json:"rlimits"`
	OOMScoreAdj int               `json:"oomScoreAdj"`

	// Namespaces maps each /proc/self/ns entry (net, pid, mnt, ...) to the
	// inode number its link names.
	Namespaces map[string]uint64 `json:"namespaces"`
	// Cgroup holds the lines of /proc/self/cgroup.
	Cgroup []string `json:"cgroup"`
	Mounts []Mount  `json:"mounts"`
	// FDs maps each open fd to its readlink target, without the fd used to
	// read /proc/self/fd.
	FDs map[int]string `json:"fds"`

	Personality   int    `json:"personality"`
	SchedPolicy   uint32 `json:"schedPolicy"`
	SchedPriority uint32 `json:"schedPriority"`
	SchedNice     int32  `json:"schedNice"`
	IOPrio        int    `json:"ioprio"`
	CPUAffinity   []int  `json:"cpuAffinity"`

	// Sysctls holds the values of the sysctls named on the command line
	// (`report net.ipv4.ip_forward`), trimmed.
	Sysctls       map[string]string `json:"sysctls"`
	TimensOffsets string            `json:"timensOffsets"`
	TTY           [3]TTY            `json:"tty"`
	// LSMLabel is /proc/self/attr/current ("" when unreadable).
	LSMLabel string `json:"lsmLabel"`

	// Errors lists what the probe could not read; it helps debugging.
	Errors []string `json:"errors,omitempty"`
}

// Rlimit is one resource limit. Infinity is ^uint64(0).
type Rlimit struct {
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Point        string `json:"point"`
	Root         string `json:"root"`
	Source       string `json:"source"`
	FSType       string `json:"fstype"`
	Options      string `json:"options"`
	SuperOptions string `json:"superOptions"`
}

// TTY says whether an fd is a terminal and which.
type TTY struct {
	IsTTY bool   `json:"isatty"`
	Name  string `json:"name"`
}

// Stat is what `probe stat PATH` prints.
type Stat struct {
	Mode  uint32 `json:"mode"` // permission bits and setuid/setgid/sticky
	Type  string `json:"type"` // file, dir, symlink, char, block, fifo, socket
	UID   int    `json:"uid"`
	GID   int    `json:"gid"`
	Major uint32 `json:"major"`
	Minor uint32 `json:"minor"`
	Size  int64  `json:"size"`
}

// Parse decodes the probe's output. It skips anything before the first '{'
// so that a runtime's stray output on the same stream does not break it.
func Parse(out []byte) (*Report, error) {
	i := strings.IndexByte(string(out), '{')
	if i < 0 {
		return nil, fmt.Errorf("parse probe report: no JSON object in %q", out)
	}
	var r Report
	if err := json.Unmarshal(out[i:], &r); err != nil {
		return nil, fmt.Errorf("parse probe report %q: %w", out, err)
	}
	return &r, nil
}

// Cap returns the capability set name (CapEff, ...) as a number.
func (r *Report) Cap(name string) (uint64, error) {
	s, ok := r.Caps[name]
	if !ok {
		return 0, fmt.Errorf("capability set %s: not reported", name)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil {
		return 0, fmt.Errorf("capability set %s: %w", name, err)
	}
	return v, nil
}

// MountAt returns the last (topmost) mount at point, or nil.
func (r *Report) MountAt(point string) *Mount {
	var m *Mount
	for i := range r.Mounts {
		if r.Mounts[i].Point == point {
			m = &r.Mounts[i]
		}
	}
	return m
}

// Getenv returns the value of key in Env and whether it is set.
func (r *Report) Getenv(key string) (string, bool) {
	for _, kv := range r.Env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// HasOption reports whether the comma-separated options of m (per-mount or
// super block) include opt.
func (m *Mount) HasOption(opt string) bool {
	for _, list := range []string{m.Options, m.SuperOptions} {
		for _, o := range strings.Split(list, ",") {
			if o == opt {
				return true
			}
		}
	}
	return false
}
