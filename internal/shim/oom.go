package shim

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/gantry-project/gantry/internal/mountinfo"
)

// OOM kills of the container: when its init exits the shim reads how many
// processes the kernel's OOM killer killed in the container's cgroup, and
// keeps "killed or not" in the exit record (docker's State.OOMKilled). The
// runtime made the cgroup at create and removes it at delete, so the count
// is that of this run. The shim does not link the runtime's cgroup code:
// it maps linux.cgroupsPath to a directory as runc and gantry-oci do
// (docs/design/cgroups.md), for the one hierarchy it reads.

// oomCounter is where a container's OOM kill count is read: the file and
// the key of its "key value" line.
type oomCounter struct {
	file, key string
}

// cgroupMount is one cgroup (v1) or cgroup2 line of /proc/self/mountinfo.
type cgroupMount struct {
	root, mountpoint string
	v2               bool
	options          []string // super options: a v1 mount's controllers
}

// findOOMCounter returns the counter of the container's cgroup, given the
// bundle's linux.cgroupsPath and the container id: in the v1 memory
// hierarchy when one is mounted (legacy and hybrid hosts), memory.oom_control's
// "oom_kill" line, else in the cgroup2 hierarchy memory.events' "oom_kill"
// line. mounts and selfCgroup are the contents of /proc/self/mountinfo
// and /proc/self/cgroup: a relative cgroupsPath is below the cgroup of the
// runtime's process, which is the shim's own (the shim starts it). ok is
// false when there is nowhere to read: no such hierarchy, or a systemd
// "slice:prefix:name" path, whose directory only the systemd driver knows.
func findOOMCounter(mounts, selfCgroup, cgroupsPath, id string) (c oomCounter, ok bool, err error) {
	if cgroupsPath == "" {
		cgroupsPath = "/" + id // the runtime's default, as runc's
	}
	if !strings.HasPrefix(cgroupsPath, "/") && strings.Count(cgroupsPath, ":") == 2 {
		return oomCounter{}, false, nil
	}
	var v1, v2 *cgroupMount
	for _, m := range parseCgroupMounts(mounts) {
		switch {
		case m.v2 && v2 == nil:
			v2 = &m
		case !m.v2 && v1 == nil && slices.Contains(m.options, "memory"):
			v1 = &m
		}
	}
	m, c := v1, oomCounter{file: "memory.oom_control", key: "oom_kill"}
	if m == nil {
		m, c = v2, oomCounter{file: "memory.events", key: "oom_kill"}
	}
	if m == nil {
		return oomCounter{}, false, nil
	}
	dir := path.Clean("/" + cgroupsPath)
	if !strings.HasPrefix(cgroupsPath, "/") {
		own, found := ownCgroup(selfCgroup, !m.v2)
		if !found {
			return oomCounter{}, false, fmt.Errorf("cgroups path %q is relative and /proc/self/cgroup has no %s line", cgroupsPath, hierarchyName(m.v2))
		}
		// The own path is relative to the hierarchy's root; the mount
		// shows the hierarchy from its root field down.
		if m.root != "/" {
			if own != m.root && !strings.HasPrefix(own, m.root+"/") {
				return oomCounter{}, false, fmt.Errorf("own %s cgroup %q is outside the mount's root %q", hierarchyName(m.v2), own, m.root)
			}
			own = strings.TrimPrefix(own, m.root)
		}
		dir = path.Join("/", own, cgroupsPath)
	}
	c.file = path.Join(m.mountpoint, dir, c.file)
	return c, true, nil
}

func hierarchyName(v2 bool) string {
	if v2 {
		return "cgroup2"
	}
	return "memory"
}

// parseCgroupMounts returns the cgroup and cgroup2 mounts of a mountinfo
// (proc(5): "id parent maj:min root mountpoint options [optional...] -
// fstype source superoptions"), in order.
func parseCgroupMounts(mounts string) []cgroupMount {
	var out []cgroupMount
	for _, line := range strings.Split(mounts, "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			continue
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 5 || len(qf) < 1 || (qf[0] != "cgroup" && qf[0] != "cgroup2") {
			continue
		}
		m := cgroupMount{root: mountinfo.Unescape(pf[3]), mountpoint: mountinfo.Unescape(pf[4]), v2: qf[0] == "cgroup2"}
		if len(qf) >= 3 {
			m.options = strings.Split(qf[2], ",")
		}
		out = append(out, m)
	}
	return out
}

// ownCgroup returns the path of the memory (v1) or the cgroup2 line of a
// /proc/<pid>/cgroup ("id:controllers:path"; cgroup2's is "0::path").
func ownCgroup(selfCgroup string, v1Memory bool) (string, bool) {
	for _, line := range strings.Split(selfCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		if v1Memory && slices.Contains(strings.Split(parts[1], ","), "memory") {
			return parts[2], true
		}
		if !v1Memory && parts[0] == "0" && parts[1] == "" {
			return parts[2], true
		}
	}
	return "", false
}

// read returns the count; a cgroup that is gone (a forced delete removed
// it before the exit was seen) reads as no kill.
func (c oomCounter) read() (uint64, error) {
	f, err := os.Open(c.file)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read oom kill count: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if ok && k == c.key {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: %s %q: %w", c.file, k, v, err)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", c.file, err)
	}
	// A kernel older than 4.13 has no oom_kill line in v1's
	// memory.oom_control: no kill can be told.
	return 0, nil
}

// oomKilled tells whether the OOM killer killed a process of the
// container: called when its init exits, before anything removes the
// cgroup. What cannot be read counts as no kill (the exit goes on) and is
// said on the shim's stderr, its log.
func (s *Shim) oomKilled() bool {
	n, err := s.oomKills()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gantry-shim %s: oom kills of the container: %v\n", s.opts.ID, err)
	}
	return n > 0
}

func (s *Shim) oomKills() (uint64, error) {
	l := s.oom.Load()
	if l == nil {
		s.locateOOMCounter()
		l = s.oom.Load()
	}
	<-l.done
	if l.err != nil || !l.ok {
		return 0, l.err
	}
	return l.c.read()
}

// oomLocation is where the container's OOM kills are counted, found once,
// in the background, while the container is created: at the init's exit
// only the counter is read, on the path that reports the exit.
type oomLocation struct {
	done chan struct{} // closed once the fields are set
	c    oomCounter
	ok   bool
	err  error
}

// locateOOMCounter starts finding the counter (s.cgroupsPath must be
// set); oomKills waits for it.
func (s *Shim) locateOOMCounter() {
	l := &oomLocation{done: make(chan struct{})}
	s.oom.Store(l)
	go func() {
		defer close(l.done)
		mounts, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			l.err = err
			return
		}
		self, err := os.ReadFile("/proc/self/cgroup")
		if err != nil {
			l.err = err
			return
		}
		l.c, l.ok, l.err = findOOMCounter(string(mounts), string(self), s.cgroupsPath, s.opts.ID)
	}()
}
