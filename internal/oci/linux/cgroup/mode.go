package cgroup

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/mountinfo"
)

// Mode is the cgroup layout of the host.
type Mode int

// The three layouts.
const (
	// Legacy: only cgroup v1 hierarchies are mounted.
	Legacy Mode = iota
	// Hybrid: v1 hierarchies plus a cgroup2 mount (usually /sys/fs/cgroup/unified).
	Hybrid
	// Unified: a single cgroup2 hierarchy.
	Unified
)

func (m Mode) String() string {
	switch m {
	case Legacy:
		return "legacy"
	case Hybrid:
		return "hybrid"
	case Unified:
		return "unified"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// DetectMode reads /proc/self/mountinfo and reports the host's layout.
func DetectMode() (Mode, error) {
	mounts, err := readMountinfo()
	if err != nil {
		return 0, err
	}
	return modeFromMounts(mounts)
}

// mountInfo is one cgroup or cgroup2 line of mountinfo.
type mountInfo struct {
	root       string // root of the mount inside its hierarchy
	mountpoint string
	fstype     string // "cgroup" or "cgroup2"
	superOpts  []string
}

// v1Controllers is every v1 controller (and named hierarchy) this package
// knows; other options of a cgroup mount (rw, nsdelegate, ...) are ignored.
var v1Controllers = map[string]bool{
	"cpu": true, "cpuacct": true, "cpuset": true, "memory": true,
	"devices": true, "freezer": true, "net_cls": true, "net_prio": true,
	"blkio": true, "perf_event": true, "hugetlb": true, "pids": true,
	"rdma": true, "misc": true, "name=systemd": true,
}

// controllers returns the v1 controllers a cgroup mount carries.
func (m mountInfo) controllers() []string {
	var out []string
	for _, o := range m.superOpts {
		if v1Controllers[o] {
			out = append(out, o)
		}
	}
	return out
}

func readMountinfo() ([]mountInfo, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	defer f.Close()
	mounts, err := parseMountinfo(f)
	if err != nil {
		return nil, fmt.Errorf("read /proc/self/mountinfo: %w", err)
	}
	return mounts, nil
}

// parseMountinfo returns the cgroup and cgroup2 mounts of a mountinfo file
// (proc(5)): "id parent maj:min root mountpoint opts [optional...] - fstype source superopts".
func parseMountinfo(r io.Reader) ([]mountInfo, error) {
	var out []mountInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf := strings.Fields(pre)
		qf := strings.Fields(post)
		if len(pf) < 5 || len(qf) < 2 {
			return nil, fmt.Errorf("malformed mountinfo line %q: %w", line, errdefs.ErrInvalidArgument)
		}
		if qf[0] != "cgroup" && qf[0] != "cgroup2" {
			continue
		}
		m := mountInfo{root: mountinfo.Unescape(pf[3]), mountpoint: mountinfo.Unescape(pf[4]), fstype: qf[0]}
		if len(qf) >= 3 {
			m.superOpts = strings.Split(qf[2], ",")
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func modeFromMounts(mounts []mountInfo) (Mode, error) {
	var v1, v2 bool
	for _, m := range mounts {
		switch m.fstype {
		case "cgroup":
			if len(m.controllers()) > 0 {
				v1 = true
			}
		case "cgroup2":
			v2 = true
		}
	}
	switch {
	case v1 && v2:
		return Hybrid, nil
	case v1:
		return Legacy, nil
	case v2:
		return Unified, nil
	}
	return 0, fmt.Errorf("detect cgroup mode: no cgroup or cgroup2 mount in /proc/self/mountinfo: %w", errdefs.ErrFailedPrecondition)
}
