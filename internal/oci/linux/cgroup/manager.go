package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Manager owns one container's cgroup. Its lifecycle: New (nothing is
// created yet) -> Apply(pid) creates the directories and moves pid in ->
// Set(resources) -> ... (Freeze/Thaw, Pids, Stats, Set again for update) ->
// Destroy removes them. Paths() is saved in the container's state.json;
// Load reopens a Manager from it in a later gantry-oci invocation.
type Manager interface {
	// Apply creates every directory of the cgroup and moves pid into each
	// (v1 hierarchies and, where mounted, the v2 directory).
	Apply(pid int) error
	// Set validates r and writes it; each resource goes to its v1
	// hierarchy if mounted, else to the v2 directory.
	Set(r *specs.LinuxResources) error
	// Freeze stops every process of the cgroup and waits until the kernel
	// reports the cgroup frozen.
	Freeze() error
	// Thaw resumes a frozen cgroup.
	Thaw() error
	// State returns "frozen" or "thawed".
	State() (string, error)
	// Pids returns every pid in the cgroup and its descendants.
	Pids() ([]int, error)
	// Stats reads memory, cpu, pids, blkio and hugetlb counters.
	Stats() (*Stats, error)
	// OOMKillCount returns how many processes the OOM killer has killed in
	// the cgroup.
	OOMKillCount() (uint64, error)
	// Destroy removes every directory (deepest first), retrying briefly on
	// EBUSY; directories already gone are fine.
	Destroy() error
	// Paths maps controller name to absolute directory; "" is the v2 directory.
	Paths() map[string]string
	// Exists reports whether the cgroup's directory exists.
	Exists() bool
}

// New returns the manager for cgroupsPath (linux.cgroupsPath) of container
// id. Empty means "/<id>". An absolute path is relative to each
// hierarchy's root, a relative one to the caller's own cgroup in that
// hierarchy (from /proc/self/cgroup). ".." may not climb above the root;
// systemd "slice:prefix:name" paths are not implemented.
func New(cgroupsPath, id string) (Manager, error) {
	if isSystemdPath(cgroupsPath) {
		return nil, fmt.Errorf("linux.cgroupsPath %q: systemd cgroup driver: %w", cgroupsPath, errdefs.ErrNotImplemented)
	}
	mounts, err := readMountinfo()
	if err != nil {
		return nil, err
	}
	self, err := readSelfCgroup()
	if err != nil {
		return nil, err
	}
	paths, err := resolvePaths(mounts, self, cgroupsPath, id)
	if err != nil {
		return nil, err
	}
	return &manager{paths: paths}, nil
}

// Load reopens the manager whose Paths() were saved.
func Load(paths map[string]string) (Manager, error) {
	if len(paths) == 0 {
		return nil, fmt.Errorf("load cgroup: no paths: %w", errdefs.ErrInvalidArgument)
	}
	m := &manager{paths: map[string]string{}}
	for k, p := range paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
			return nil, fmt.Errorf("load cgroup: %s path %q is not a clean absolute path: %w", displayKey(k), p, errdefs.ErrInvalidArgument)
		}
		m.paths[k] = p
	}
	return m, nil
}

type manager struct {
	paths map[string]string
}

func (m *manager) Paths() map[string]string {
	out := make(map[string]string, len(m.paths))
	for k, v := range m.paths {
		out[k] = v
	}
	return out
}

func (m *manager) v2Dir() string { return m.paths[""] }

// unifiedOnly reports whether the host is pure cgroup v2.
func (m *manager) unifiedOnly() bool { return len(m.paths) == 1 && m.paths[""] != "" }

// dirs returns the distinct directories, sorted.
func (m *manager) dirs() []string {
	seen := map[string]bool{}
	var out []string
	for _, d := range m.paths {
		if !seen[d] {
			seen[d] = true
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// primaryDir is where Pids and Exists look.
func (m *manager) primaryDir() string {
	if m.unifiedOnly() {
		return m.v2Dir()
	}
	for _, k := range []string{"pids", "freezer", "devices", "memory", "cpu", ""} {
		if d := m.paths[k]; d != "" {
			return d
		}
	}
	return m.dirs()[0]
}

func writeFile(dir, file, value string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return err
	}
	_, werr := f.WriteString(value)
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, werr)
	}
	if cerr != nil {
		return fmt.Errorf("write %q to %s: %w", value, p, cerr)
	}
	return nil
}

func readFile(dir, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func (m *manager) Apply(pid int) error {
	for _, key := range sortedKeys(m.paths) {
		dir := m.paths[key]
		var err error
		if key == "cpuset" {
			err = mkdirCpuset(dir)
		} else {
			err = os.MkdirAll(dir, 0o755)
		}
		if err != nil {
			return fmt.Errorf("create %s cgroup %s: %w", displayKey(key), dir, err)
		}
	}
	if m.unifiedOnly() {
		// Like runc: make every available controller usable in the
		// container's cgroup. Failures surface later as missing files.
		if avail, err := m.v2Available(); err == nil {
			for _, c := range avail {
				_ = m.enableV2(c)
			}
		}
	}
	if pid <= 0 {
		return nil
	}
	for _, dir := range m.dirs() {
		if err := writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); err != nil {
			return fmt.Errorf("add pid %d to cgroup %s: %w", pid, dir, err)
		}
	}
	return nil
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mkdirCpuset creates dir and its missing ancestors, copying cpuset.cpus
// and cpuset.mems from each parent: a v1 cpuset cgroup with empty sets
// refuses tasks.
func mkdirCpuset(dir string) error {
	var missing []string
	for d := dir; !exists(d); d = filepath.Dir(d) {
		if d == "/" {
			return fmt.Errorf("no cpuset hierarchy above %s: %w", dir, errdefs.ErrFailedPrecondition)
		}
		missing = append(missing, d)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		if err := os.Mkdir(missing[i], 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	// Fill every level from the top so that each parent is non-empty first.
	var chain []string
	for d := dir; exists(filepath.Join(filepath.Dir(d), "cpuset.cpus")); d = filepath.Dir(d) {
		chain = append(chain, d)
	}
	for i := len(chain) - 1; i >= 0; i-- {
		d := chain[i]
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			cur, err := readFile(d, f)
			if err != nil {
				return fmt.Errorf("read %s: %w", filepath.Join(d, f), err)
			}
			if cur != "" {
				continue
			}
			parent, err := readFile(filepath.Dir(d), f)
			if err != nil {
				return fmt.Errorf("read %s: %w", filepath.Join(filepath.Dir(d), f), err)
			}
			if err := writeFile(d, f, parent); err != nil {
				return err
			}
		}
	}
	return nil
}

// v2Root finds the root of the cgroup2 hierarchy holding the v2 directory:
// the nearest ancestor with cgroup.controllers but no cgroup.type (which
// every non-root cgroup has).
func (m *manager) v2Root() (string, error) {
	dir := m.v2Dir()
	for d := dir; ; d = filepath.Dir(d) {
		if exists(filepath.Join(d, "cgroup.controllers")) && !exists(filepath.Join(d, "cgroup.type")) {
			return d, nil
		}
		if d == "/" {
			return "", fmt.Errorf("find cgroup2 root above %s: %w", dir, errdefs.ErrFailedPrecondition)
		}
	}
}

// v2Available lists the controllers of the cgroup2 hierarchy.
func (m *manager) v2Available() ([]string, error) {
	if m.v2Dir() == "" {
		return nil, nil
	}
	root, err := m.v2Root()
	if err != nil {
		return nil, err
	}
	s, err := readFile(root, "cgroup.controllers")
	if err != nil {
		return nil, fmt.Errorf("read cgroup2 controllers: %w", err)
	}
	return strings.Fields(s), nil
}

func (m *manager) v2Has(ctrl string) bool {
	avail, err := m.v2Available()
	if err != nil {
		return false
	}
	for _, c := range avail {
		if c == ctrl {
			return true
		}
	}
	return false
}

// enableV2 writes "+ctrl" to cgroup.subtree_control of every ancestor of
// the v2 directory, from the hierarchy root down, where it is not enabled yet.
func (m *manager) enableV2(ctrl string) error {
	root, err := m.v2Root()
	if err != nil {
		return err
	}
	rel, err := filepath.Rel(root, m.v2Dir())
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup %s is not below its root %s: %w", m.v2Dir(), root, errdefs.ErrInvalidArgument)
	}
	d := root
	for _, c := range strings.Split(rel, "/") {
		cur, err := readFile(d, "cgroup.subtree_control")
		if err != nil {
			return fmt.Errorf("enable %s controller: read %s: %w", ctrl, filepath.Join(d, "cgroup.subtree_control"), err)
		}
		if d == root && !m.unifiedOnly() && !contains(strings.Fields(cur), ctrl) {
			// On a hybrid host the cgroup2 root belongs to the host's
			// init: never change what it delegates.
			return fmt.Errorf("%s controller is not enabled at the cgroup2 root %s (hybrid host): %w", ctrl, root, errdefs.ErrFailedPrecondition)
		}
		if !contains(strings.Fields(cur), ctrl) {
			if err := writeFile(d, "cgroup.subtree_control", "+"+ctrl); err != nil {
				return fmt.Errorf("enable %s controller: %w", ctrl, err)
			}
		}
		d = filepath.Join(d, c)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// target picks where group g lives: its v1 hierarchy if mounted, else the
// v2 directory if the cgroup2 hierarchy has the controller.
func (m *manager) target(g group) (dir string, v2 bool, err error) {
	if d := m.paths[g.v1]; d != "" {
		return d, false, nil
	}
	if g.v2 != "" && m.v2Dir() != "" && m.v2Has(g.v2) {
		return m.v2Dir(), true, nil
	}
	return "", false, fmt.Errorf("linux.resources.%s: no %s cgroup controller on this host: %w", g.name, g.v1, errdefs.ErrFailedPrecondition)
}

// apply writes ws into dir; optional writes whose file is missing (or
// which the kernel no longer supports) are skipped.
func apply(dir string, ws []write) error {
	for _, w := range ws {
		if err := writeFile(dir, w.file, w.value); err != nil {
			if w.optional && (errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.EOPNOTSUPP)) {
				continue
			}
			if errors.Is(err, unix.ENODEV) && strings.HasSuffix(w.file, "_device") {
				// a per-device limit for a device this host does not have
				slog.Warn("cgroup device limit not applied", "field", w.field, "error", err)
				continue
			}
			return fmt.Errorf("%s: %w", w.field, err)
		}
	}
	return nil
}

func (m *manager) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if err := Validate(r); err != nil {
		return err
	}
	if err := m.setMemory(r.Memory); err != nil {
		return err
	}
	type plan struct {
		g      group
		v1, v2 func() ([]write, error)
	}
	wrap := func(ws []write) func() ([]write, error) { return func() ([]write, error) { return ws, nil } }
	plans := []plan{
		{groupCpuset, wrap(cpusetWrites(r.CPU)), wrap(cpusetWrites(r.CPU))},
		{groupCPU, wrap(cpuV1(r.CPU)), func() ([]write, error) { return cpuV2(r.CPU) }},
		{groupPids, wrap(pidsWrites(r.Pids)), wrap(pidsWrites(r.Pids))},
		{groupHugetlb, wrap(hugetlbWrites(r.HugepageLimits, false)), wrap(hugetlbWrites(r.HugepageLimits, true))},
		{groupRdma, wrap(rdmaWrites(r.Rdma)), wrap(rdmaWrites(r.Rdma))},
		{groupNetCls, wrap(netClsWrites(r.Network)), nil},
		{groupNetPrio, wrap(netPrioWrites(r.Network)), nil},
	}
	for _, p := range plans {
		ws, _ := p.v1()
		if len(ws) == 0 {
			continue
		}
		dir, v2, err := m.target(p.g)
		if err == nil && v2 {
			if ws, err = p.v2(); err != nil {
				return err
			}
			if err = m.enableV2(p.g.v2); err != nil {
				err = fmt.Errorf("linux.resources.%s: %w", p.g.name, err)
			}
		}
		if err != nil {
			if p.g.optional && errors.Is(err, errdefs.ErrFailedPrecondition) {
				// like runc: a controller the host lacks is skipped
				slog.Warn("cgroup limit not applied", "error", err)
				continue
			}
			return err
		}
		if err := apply(dir, ws); err != nil {
			return err
		}
	}
	if err := m.setBlkio(r.BlockIO); err != nil {
		return err
	}
	if err := m.setDevices(r.Devices); err != nil {
		return err
	}
	return m.setUnified(r.Unified)
}

func (m *manager) setMemory(mem *specs.LinuxMemory) error {
	ws := memoryV1(mem)
	if len(ws) == 0 {
		return nil
	}
	dir, v2, err := m.target(groupMemory)
	if err != nil {
		return err
	}
	usageFile := "memory.usage_in_bytes"
	if v2 {
		if ws, err = memoryV2(mem); err != nil {
			return err
		}
		if err := m.enableV2("memory"); err != nil {
			return fmt.Errorf("linux.resources.memory: %w", err)
		}
		usageFile = "memory.current"
	}
	if mem.CheckBeforeUpdate != nil && *mem.CheckBeforeUpdate && mem.Limit != nil && *mem.Limit > 0 {
		if s, err := readFile(dir, usageFile); err == nil {
			if usage, err := strconv.ParseInt(s, 10, 64); err == nil && *mem.Limit < usage {
				return fmt.Errorf("%slimit: %d is below current usage %d: %w", memField, *mem.Limit, usage, errdefs.ErrFailedPrecondition)
			}
		}
	}
	if !v2 && len(ws) >= 2 && ws[0].file == "memory.limit_in_bytes" && ws[1].file == "memory.memsw.limit_in_bytes" {
		// v1 keeps limit <= memsw at all times: raise memsw first when the
		// new limit is above the current memsw limit.
		if cur, err := readFile(dir, "memory.memsw.limit_in_bytes"); err == nil {
			curSw, _ := strconv.ParseUint(cur, 10, 64)
			limit := uint64(*mem.Limit)
			if *mem.Limit == -1 || limit > curSw {
				ws[0], ws[1] = ws[1], ws[0]
			}
		}
	}
	return apply(dir, ws)
}

func (m *manager) setBlkio(b *specs.LinuxBlockIO) error {
	ws := blkioV1(b)
	if len(ws) == 0 {
		return nil
	}
	dir, v2, err := m.target(groupBlkio)
	if err != nil {
		return err
	}
	if v2 {
		if err := m.enableV2("io"); err != nil {
			return fmt.Errorf("linux.resources.blockIO: %w", err)
		}
		ws = ioV2(b, exists(filepath.Join(dir, "io.bfq.weight")))
	} else if !exists(filepath.Join(dir, "blkio.weight")) && exists(filepath.Join(dir, "blkio.bfq.weight")) {
		for i := range ws {
			switch ws[i].file {
			case "blkio.weight":
				ws[i].file = "blkio.bfq.weight"
			case "blkio.weight_device":
				ws[i].file = "blkio.bfq.weight_device"
			}
		}
	}
	return apply(dir, ws)
}

func (m *manager) setDevices(devs []specs.LinuxDeviceCgroup) error {
	if len(devs) == 0 {
		return nil
	}
	if dir := m.paths["devices"]; dir != "" {
		ws, err := v1DeviceWrites(devs)
		if err != nil {
			return err
		}
		return apply(dir, ws)
	}
	if m.v2Dir() == "" {
		return fmt.Errorf("linux.resources.devices: no devices cgroup controller on this host: %w", errdefs.ErrFailedPrecondition)
	}
	rules := make([]deviceRule, len(devs))
	for i, d := range devs {
		r, err := parseDeviceRule(d)
		if err != nil {
			return fmt.Errorf("linux.resources.devices[%d]: %w", i, err)
		}
		rules[i] = r
	}
	if err := attachDeviceProgram(m.v2Dir(), deviceProgram(rules)); err != nil {
		return fmt.Errorf("linux.resources.devices: %w", err)
	}
	return nil
}

func (m *manager) setUnified(u map[string]string) error {
	if len(u) == 0 {
		return nil
	}
	dir := m.v2Dir()
	if dir == "" {
		return fmt.Errorf("linux.resources.unified: no cgroup v2 hierarchy on this host: %w", errdefs.ErrFailedPrecondition)
	}
	for _, k := range sortedKeys(u) {
		ctrl, _, _ := strings.Cut(k, ".")
		if ctrl != "cgroup" && m.v2Has(ctrl) {
			if err := m.enableV2(ctrl); err != nil {
				return fmt.Errorf("linux.resources.unified[%q]: %w", k, err)
			}
		}
		if err := writeFile(dir, k, u[k]); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				err = fmt.Errorf("%w (is the %s controller available?)", err, ctrl)
			}
			return fmt.Errorf("linux.resources.unified[%q]: %w", k, err)
		}
	}
	return nil
}

const freezeTimeout = 10 * time.Second

func (m *manager) Freeze() error {
	if dir := m.paths["freezer"]; dir != "" {
		deadline := time.Now().Add(freezeTimeout)
		for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
			// Re-writing FROZEN retries tasks that were in the middle of a fork.
			if err := writeFile(dir, "freezer.state", "FROZEN"); err != nil {
				return fmt.Errorf("freeze cgroup: %w", err)
			}
			s, err := readFile(dir, "freezer.state")
			if err != nil {
				return fmt.Errorf("freeze cgroup: %w", err)
			}
			if s == "FROZEN" {
				return nil
			}
			if time.Now().After(deadline) {
				_ = writeFile(dir, "freezer.state", "THAWED")
				return fmt.Errorf("freeze cgroup %s: still %s after %s: %w", dir, s, freezeTimeout, errdefs.ErrUnavailable)
			}
			time.Sleep(delay)
		}
	}
	dir := m.v2Dir()
	if dir == "" {
		return fmt.Errorf("freeze cgroup: no freezer on this host: %w", errdefs.ErrFailedPrecondition)
	}
	if err := writeFile(dir, "cgroup.freeze", "1"); err != nil {
		return fmt.Errorf("freeze cgroup: %w", err)
	}
	deadline := time.Now().Add(freezeTimeout)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		frozen, err := v2Frozen(dir)
		if err != nil {
			return fmt.Errorf("freeze cgroup: %w", err)
		}
		if frozen {
			return nil
		}
		if time.Now().After(deadline) {
			_ = writeFile(dir, "cgroup.freeze", "0")
			return fmt.Errorf("freeze cgroup %s: not frozen after %s: %w", dir, freezeTimeout, errdefs.ErrUnavailable)
		}
		time.Sleep(delay)
	}
}

// v2Frozen reads the "frozen" key of cgroup.events.
func v2Frozen(dir string) (bool, error) {
	kv, err := readKeyValues(dir, "cgroup.events")
	if err != nil {
		return false, err
	}
	return kv["frozen"] == 1, nil
}

func (m *manager) Thaw() error {
	if dir := m.paths["freezer"]; dir != "" {
		if err := writeFile(dir, "freezer.state", "THAWED"); err != nil {
			return fmt.Errorf("thaw cgroup: %w", err)
		}
		return nil
	}
	dir := m.v2Dir()
	if dir == "" {
		return fmt.Errorf("thaw cgroup: no freezer on this host: %w", errdefs.ErrFailedPrecondition)
	}
	if err := writeFile(dir, "cgroup.freeze", "0"); err != nil {
		return fmt.Errorf("thaw cgroup: %w", err)
	}
	return nil
}

func (m *manager) State() (string, error) {
	if dir := m.paths["freezer"]; dir != "" {
		s, err := readFile(dir, "freezer.state")
		if err != nil {
			return "", fmt.Errorf("read freezer state: %w", err)
		}
		if s == "FROZEN" {
			return "frozen", nil
		}
		return "thawed", nil
	}
	dir := m.v2Dir()
	if dir == "" {
		return "", fmt.Errorf("read freezer state: no freezer on this host: %w", errdefs.ErrFailedPrecondition)
	}
	s, err := readFile(dir, "cgroup.freeze")
	if err != nil {
		return "", fmt.Errorf("read freezer state: %w", err)
	}
	if s == "1" {
		return "frozen", nil
	}
	return "thawed", nil
}

func (m *manager) Pids() ([]int, error) {
	dir := m.primaryDir()
	var pids []int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil // a child cgroup vanished under us
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		s, err := readFile(p, "cgroup.procs")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(s) {
			pid, err := strconv.Atoi(f)
			if err != nil {
				return fmt.Errorf("parse %s: %q: %w", filepath.Join(p, "cgroup.procs"), f, err)
			}
			pids = append(pids, pid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list pids of cgroup %s: %w", dir, err)
	}
	return pids, nil
}

func (m *manager) OOMKillCount() (uint64, error) {
	if dir := m.paths["memory"]; dir != "" {
		kv, err := readKeyValues(dir, "memory.oom_control")
		if err != nil {
			return 0, fmt.Errorf("read oom kill count: %w", err)
		}
		return kv["oom_kill"], nil
	}
	if dir := m.v2Dir(); dir != "" {
		kv, err := readKeyValues(dir, "memory.events")
		if err != nil {
			return 0, fmt.Errorf("read oom kill count: %w", err)
		}
		return kv["oom_kill"], nil
	}
	return 0, fmt.Errorf("read oom kill count: no memory cgroup controller: %w", errdefs.ErrFailedPrecondition)
}

func (m *manager) Destroy() error {
	var errs []error
	for _, dir := range m.dirs() {
		// The common case, a cgroup without children: one rmdir, no
		// listing of its (tens of) control files.
		if err := unix.Rmdir(dir); err == nil || errors.Is(err, unix.ENOENT) {
			continue
		}
		var sub []string
		_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				sub = append(sub, p)
			}
			return nil
		})
		// WalkDir lists parents before children: remove in reverse.
		for i := len(sub) - 1; i >= 0; i-- {
			if err := rmdirRetry(sub[i]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func rmdirRetry(dir string) error {
	delay := 10 * time.Millisecond
	for i := 0; ; i++ {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || i == 5 {
			return fmt.Errorf("remove cgroup %s: %w", dir, err)
		}
		time.Sleep(delay)
		delay *= 2
	}
}

func (m *manager) Exists() bool {
	return exists(m.primaryDir())
}
