package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats is a snapshot of the cgroup's counters, shaped (and JSON-tagged)
// like the "stats" object of runc events.
type Stats struct {
	CPU     CPUStats                `json:"cpu"`
	Memory  MemoryStats             `json:"memory"`
	Pids    PidsStats               `json:"pids"`
	Blkio   BlkioStats              `json:"blkio"`
	Hugetlb map[string]HugetlbStats `json:"hugetlb,omitempty"`
}

// CPUStats holds usage in nanoseconds and CFS throttling counters.
type CPUStats struct {
	Usage      CPUUsage   `json:"usage"`
	Throttling Throttling `json:"throttling"`
}

// CPUUsage is in nanoseconds. Percpu is only known on cgroup v1.
type CPUUsage struct {
	Total  uint64   `json:"total,omitempty"`
	Percpu []uint64 `json:"percpu,omitempty"`
	Kernel uint64   `json:"kernel"`
	User   uint64   `json:"user"`
}

// Throttling counts CFS periods; ThrottledTime is in nanoseconds.
type Throttling struct {
	Periods          uint64 `json:"periods,omitempty"`
	ThrottledPeriods uint64 `json:"throttledPeriods,omitempty"`
	ThrottledTime    uint64 `json:"throttledTime,omitempty"`
}

// MemoryEntry is one memory counter family in bytes. Limit is
// math.MaxUint64 when unlimited.
type MemoryEntry struct {
	Limit   uint64 `json:"limit"`
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// MemoryStats holds memory usage; Raw is memory.stat.
type MemoryStats struct {
	Cache     uint64            `json:"cache,omitempty"`
	Usage     MemoryEntry       `json:"usage"`
	Swap      MemoryEntry       `json:"swap"`
	Kernel    MemoryEntry       `json:"kernel"`
	KernelTCP MemoryEntry       `json:"kernelTCP"`
	Raw       map[string]uint64 `json:"raw,omitempty"`
}

// PidsStats holds the task count and limit (0 = no limit).
type PidsStats struct {
	Current uint64 `json:"current,omitempty"`
	Limit   uint64 `json:"limit,omitempty"`
}

// BlkioEntry is one per-device counter.
type BlkioEntry struct {
	Major uint64 `json:"major,omitempty"`
	Minor uint64 `json:"minor,omitempty"`
	Op    string `json:"op,omitempty"`
	Value uint64 `json:"value,omitempty"`
}

// BlkioStats holds bytes and operations per device and direction.
type BlkioStats struct {
	IoServiceBytesRecursive []BlkioEntry `json:"ioServiceBytesRecursive,omitempty"`
	IoServicedRecursive     []BlkioEntry `json:"ioServicedRecursive,omitempty"`
}

// HugetlbStats is per page size ("2MB", "1GB").
type HugetlbStats struct {
	Usage   uint64 `json:"usage,omitempty"`
	Max     uint64 `json:"max,omitempty"`
	Failcnt uint64 `json:"failcnt"`
}

// readKeyValues parses "key value" lines (memory.stat, cpu.stat, cgroup.events ...).
func readKeyValues(dir, file string) (map[string]uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return nil, err
	}
	return parseKeyValues(s), nil
}

func parseKeyValues(s string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
			out[f[0]] = v
		}
	}
	return out
}

// readUint reads a single-number file; "max" and v1's huge "unlimited"
// values read as math.MaxUint64; a missing file reads as 0.
func readUint(dir, file string) (uint64, error) {
	s, err := readFile(dir, file)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, nil
		}
		return 0, err
	}
	return parseUint(s)
}

func parseUint(s string) (uint64, error) {
	if s == "max" {
		return math.MaxUint64, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		// Negative values (-1) mean unlimited in a few v1 files.
		if i, ierr := strconv.ParseInt(s, 10, 64); ierr == nil && i < 0 {
			return 0, nil
		}
		return 0, fmt.Errorf("parse %q: %w", s, err)
	}
	return v, nil
}

// v1Unlimited is the page-rounded LLONG_MAX v1 reports for "no limit".
const v1Unlimited = 0x7ffffffffffff000

func v1Limit(v uint64) uint64 {
	if v >= v1Unlimited {
		return math.MaxUint64
	}
	return v
}

func (m *manager) Stats() (*Stats, error) {
	st := &Stats{}
	if err := m.memoryStats(&st.Memory); err != nil {
		return nil, fmt.Errorf("read memory stats: %w", err)
	}
	if err := m.cpuStats(&st.CPU); err != nil {
		return nil, fmt.Errorf("read cpu stats: %w", err)
	}
	if err := m.pidsStats(&st.Pids); err != nil {
		return nil, fmt.Errorf("read pids stats: %w", err)
	}
	if err := m.blkioStats(&st.Blkio); err != nil {
		return nil, fmt.Errorf("read blkio stats: %w", err)
	}
	h, err := m.hugetlbStats()
	if err != nil {
		return nil, fmt.Errorf("read hugetlb stats: %w", err)
	}
	st.Hugetlb = h
	return st, nil
}

// firstErr runs reads and returns the first error.
type reader struct{ err error }

func (r *reader) uint(dir, file string) uint64 {
	if r.err != nil {
		return 0
	}
	v, err := readUint(dir, file)
	if err != nil {
		r.err = fmt.Errorf("%s: %w", filepath.Join(dir, file), err)
	}
	return v
}

func (m *manager) memoryStats(ms *MemoryStats) error {
	dir, v2, err := m.target(groupMemory)
	if err != nil {
		return nil // no memory controller: nothing to report
	}
	raw, err := readKeyValues(dir, "memory.stat")
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	ms.Raw = raw
	var r reader
	if !v2 {
		ms.Cache = raw["total_cache"]
		entry := func(prefix string) MemoryEntry {
			return MemoryEntry{
				Usage:   r.uint(dir, prefix+"usage_in_bytes"),
				Max:     r.uint(dir, prefix+"max_usage_in_bytes"),
				Limit:   v1Limit(r.uint(dir, prefix+"limit_in_bytes")),
				Failcnt: r.uint(dir, prefix+"failcnt"),
			}
		}
		ms.Usage = entry("memory.")
		ms.Swap = entry("memory.memsw.")
		ms.Kernel = entry("memory.kmem.")
		ms.KernelTCP = entry("memory.kmem.tcp.")
		return r.err
	}
	ms.Cache = raw["file"]
	ms.Usage = MemoryEntry{Usage: r.uint(dir, "memory.current"), Max: r.uint(dir, "memory.peak"), Limit: r.uint(dir, "memory.max")}
	ms.Swap = MemoryEntry{Usage: r.uint(dir, "memory.swap.current"), Max: r.uint(dir, "memory.swap.peak"), Limit: r.uint(dir, "memory.swap.max")}
	if ev, err := readKeyValues(dir, "memory.events"); err == nil {
		ms.Usage.Failcnt = ev["max"]
	}
	ms.Kernel.Usage = raw["kernel"]
	ms.KernelTCP.Usage = raw["sock"]
	return r.err
}

func (m *manager) cpuStats(cs *CPUStats) error {
	if !m.unifiedOnly() {
		if dir := m.paths["cpuacct"]; dir != "" {
			var r reader
			cs.Usage.Total = r.uint(dir, "cpuacct.usage")
			if r.err != nil {
				return r.err
			}
			if s, err := readFile(dir, "cpuacct.usage_percpu"); err == nil {
				for _, f := range strings.Fields(s) {
					v, err := strconv.ParseUint(f, 10, 64)
					if err != nil {
						return fmt.Errorf("parse cpuacct.usage_percpu: %w", err)
					}
					cs.Usage.Percpu = append(cs.Usage.Percpu, v)
				}
			}
			if kv, err := readKeyValues(dir, "cpuacct.stat"); err == nil {
				// USER_HZ ticks; USER_HZ is 100 on every Linux ABI.
				cs.Usage.User = kv["user"] * 1e7
				cs.Usage.Kernel = kv["system"] * 1e7
			}
		}
		if dir := m.paths["cpu"]; dir != "" {
			if kv, err := readKeyValues(dir, "cpu.stat"); err == nil {
				cs.Throttling = Throttling{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_time"]}
			}
		}
		return nil
	}
	kv, err := readKeyValues(m.v2Dir(), "cpu.stat")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	cs.Usage = CPUUsage{Total: kv["usage_usec"] * 1000, User: kv["user_usec"] * 1000, Kernel: kv["system_usec"] * 1000}
	cs.Throttling = Throttling{Periods: kv["nr_periods"], ThrottledPeriods: kv["nr_throttled"], ThrottledTime: kv["throttled_usec"] * 1000}
	return nil
}

func (m *manager) pidsStats(ps *PidsStats) error {
	dir, _, err := m.target(groupPids)
	if err != nil {
		return nil
	}
	var r reader
	ps.Current = r.uint(dir, "pids.current")
	if l := r.uint(dir, "pids.max"); l != math.MaxUint64 {
		ps.Limit = l
	}
	return r.err
}

func (m *manager) blkioStats(bs *BlkioStats) error {
	dir, v2, err := m.target(groupBlkio)
	if err != nil {
		return nil
	}
	if !v2 {
		for _, f := range []struct {
			file string
			dst  *[]BlkioEntry
		}{
			{"blkio.throttle.io_service_bytes_recursive", &bs.IoServiceBytesRecursive},
			{"blkio.throttle.io_serviced_recursive", &bs.IoServicedRecursive},
		} {
			s, err := readFile(dir, f.file)
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return err
			}
			*f.dst = parseBlkioV1(s)
		}
		return nil
	}
	s, err := readFile(dir, "io.stat")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	bs.IoServiceBytesRecursive, bs.IoServicedRecursive = parseIOStat(s)
	return nil
}

// parseBlkioV1 reads "maj:min Op value" lines, skipping the "Total" line.
func parseBlkioV1(s string) []BlkioEntry {
	var out []BlkioEntry
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		v, err := strconv.ParseUint(f[2], 10, 64)
		if !ok || err != nil {
			continue
		}
		out = append(out, BlkioEntry{Major: maj, Minor: min, Op: f[1], Value: v})
	}
	return out
}

// parseIOStat reads v2 io.stat ("maj:min rbytes=N wbytes=N rios=N wios=N ...")
// into v1-style Read/Write entries for bytes and for operations.
func parseIOStat(s string) (bytes, ios []BlkioEntry) {
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		maj, min, ok := parseDev(f[0])
		if !ok {
			continue
		}
		for _, kv := range f[1:] {
			k, vs, _ := strings.Cut(kv, "=")
			v, err := strconv.ParseUint(vs, 10, 64)
			if err != nil {
				continue
			}
			e := BlkioEntry{Major: maj, Minor: min, Value: v}
			switch k {
			case "rbytes":
				e.Op = "Read"
				bytes = append(bytes, e)
			case "wbytes":
				e.Op = "Write"
				bytes = append(bytes, e)
			case "rios":
				e.Op = "Read"
				ios = append(ios, e)
			case "wios":
				e.Op = "Write"
				ios = append(ios, e)
			}
		}
	}
	return bytes, ios
}

func parseDev(s string) (uint64, uint64, bool) {
	a, b, ok := strings.Cut(s, ":")
	if !ok {
		return 0, 0, false
	}
	maj, err1 := strconv.ParseUint(a, 10, 64)
	min, err2 := strconv.ParseUint(b, 10, 64)
	return maj, min, err1 == nil && err2 == nil
}

// hugepageSizes lists the kernel's huge page sizes in cgroup file naming
// ("2MB", "1GB") from /sys/kernel/mm/hugepages.
func hugepageSizes() ([]string, error) {
	ents, err := os.ReadDir("/sys/kernel/mm/hugepages")
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if s, ok := hugepageName(e.Name()); ok {
			out = append(out, s)
		}
	}
	return out, nil
}

// hugepageName turns "hugepages-2048kB" into "2MB", as the kernel names
// hugetlb cgroup files.
func hugepageName(dir string) (string, bool) {
	s, ok := strings.CutPrefix(dir, "hugepages-")
	if !ok {
		return "", false
	}
	s, ok = strings.CutSuffix(s, "kB")
	if !ok {
		return "", false
	}
	kb, err := strconv.ParseUint(s, 10, 64)
	if err != nil || kb == 0 {
		return "", false
	}
	units := []string{"KB", "MB", "GB", "TB", "PB"}
	i := 0
	for kb%1024 == 0 && i < len(units)-1 {
		kb /= 1024
		i++
	}
	return strconv.FormatUint(kb, 10) + units[i], true
}

func (m *manager) hugetlbStats() (map[string]HugetlbStats, error) {
	dir, v2, err := m.target(groupHugetlb)
	if err != nil {
		return nil, nil
	}
	sizes, err := hugepageSizes()
	if err != nil {
		return nil, err
	}
	out := map[string]HugetlbStats{}
	var r reader
	for _, size := range sizes {
		p := "hugetlb." + size + "."
		if !v2 {
			out[size] = HugetlbStats{Usage: r.uint(dir, p+"usage_in_bytes"), Max: r.uint(dir, p+"max_usage_in_bytes"), Failcnt: r.uint(dir, p+"failcnt")}
			continue
		}
		h := HugetlbStats{Usage: r.uint(dir, p+"current")} // v2 keeps no peak
		if ev, err := readKeyValues(dir, p+"events"); err == nil {
			h.Failcnt = ev["max"]
		}
		out[size] = h
	}
	return out, r.err
}
