package cgroup

import (
	"fmt"
	"sort"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// write is one value for one cgroup file, planned from linux.resources.
type write struct {
	file     string
	value    string
	field    string // the spec field it comes from, for errors
	optional bool   // skip silently when the file does not exist
}

// group is a set of resources handled by one controller: v1 names the v1
// hierarchy, v2 the cgroup2 controller ("" for none).
type group struct {
	name string // for error messages: the linux.resources field
	v1   string
	v2   string
	// optional: a host without the controller skips the limit with a
	// warning (as runc does) instead of failing the container.
	optional bool
}

var (
	groupMemory  = group{"memory", "memory", "memory", false}
	groupCPU     = group{"cpu", "cpu", "cpu", false}
	groupCpuset  = group{"cpu", "cpuset", "cpuset", false}
	groupPids    = group{"pids", "pids", "pids", false}
	groupBlkio   = group{"blockIO", "blkio", "io", false}
	groupHugetlb = group{"hugepageLimits", "hugetlb", "hugetlb", true}
	groupRdma    = group{"rdma", "rdma", "rdma", true}
	groupNetCls  = group{"network.classID", "net_cls", "", true}
	groupNetPrio = group{"network.priorities", "net_prio", "", true}
)

func itoa(v int64) string   { return strconv.FormatInt(v, 10) }
func utoa(v uint64) string  { return strconv.FormatUint(v, 10) }
func boolNum(b bool) string { return map[bool]string{true: "1", false: "0"}[b] }

// maxOr renders v, or "max" for -1 (v2's spelling of unlimited).
func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return itoa(v)
}

const memField = "linux.resources.memory."

func memoryV1(m *specs.LinuxMemory) []write {
	if m == nil {
		return nil
	}
	var w []write
	if m.Limit != nil && *m.Limit != 0 {
		w = append(w, write{file: "memory.limit_in_bytes", value: itoa(*m.Limit), field: memField + "limit"})
	}
	if m.Swap != nil && *m.Swap != 0 {
		w = append(w, write{file: "memory.memsw.limit_in_bytes", value: itoa(*m.Swap), field: memField + "swap"})
	}
	if m.Reservation != nil && *m.Reservation != 0 {
		w = append(w, write{file: "memory.soft_limit_in_bytes", value: itoa(*m.Reservation), field: memField + "reservation"})
	}
	if m.Kernel != nil && *m.Kernel != 0 {
		w = append(w, write{file: "memory.kmem.limit_in_bytes", value: itoa(*m.Kernel), field: memField + "kernel", optional: true})
	}
	if m.KernelTCP != nil && *m.KernelTCP != 0 {
		w = append(w, write{file: "memory.kmem.tcp.limit_in_bytes", value: itoa(*m.KernelTCP), field: memField + "kernelTCP", optional: true})
	}
	if m.Swappiness != nil {
		w = append(w, write{file: "memory.swappiness", value: utoa(*m.Swappiness), field: memField + "swappiness"})
	}
	if m.DisableOOMKiller != nil {
		w = append(w, write{file: "memory.oom_control", value: boolNum(*m.DisableOOMKiller), field: memField + "disableOOMKiller"})
	}
	if m.UseHierarchy != nil {
		w = append(w, write{file: "memory.use_hierarchy", value: boolNum(*m.UseHierarchy), field: memField + "useHierarchy", optional: true})
	}
	return w
}

// swapV2 converts v1's memory+swap total into v2's swap-only memory.swap.max.
func swapV2(limit, swap *int64) (string, bool, error) {
	if swap == nil || *swap == 0 {
		return "", false, nil
	}
	if *swap == -1 {
		return "max", true, nil
	}
	if limit == nil || *limit <= 0 {
		return "", false, fmt.Errorf("%sswap: %d needs a memory limit to convert to cgroup v2 memory.swap.max: %w", memField, *swap, errdefs.ErrInvalidArgument)
	}
	if *swap < *limit {
		return "", false, fmt.Errorf("%sswap: %d is below memory limit %d: %w", memField, *swap, *limit, errdefs.ErrInvalidArgument)
	}
	return itoa(*swap - *limit), true, nil
}

func memoryV2(m *specs.LinuxMemory) ([]write, error) {
	if m == nil {
		return nil, nil
	}
	var w []write
	if m.Limit != nil && *m.Limit != 0 {
		w = append(w, write{file: "memory.max", value: maxOr(*m.Limit), field: memField + "limit"})
	}
	if v, ok, err := swapV2(m.Limit, m.Swap); err != nil {
		return nil, err
	} else if ok {
		w = append(w, write{file: "memory.swap.max", value: v, field: memField + "swap"})
	}
	if m.Reservation != nil && *m.Reservation != 0 {
		w = append(w, write{file: "memory.low", value: maxOr(*m.Reservation), field: memField + "reservation"})
	}
	if m.Swappiness != nil {
		return nil, fmt.Errorf("%sswappiness: no cgroup v2 equivalent: %w", memField, errdefs.ErrNotImplemented)
	}
	if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
		return nil, fmt.Errorf("%sdisableOOMKiller: no cgroup v2 equivalent: %w", memField, errdefs.ErrNotImplemented)
	}
	// kernel, kernelTCP and useHierarchy have no v2 file: ignored (v2 is
	// always hierarchical and accounts kernel memory in memory.max).
	return w, nil
}

const cpuField = "linux.resources.cpu."

func cpuV1(c *specs.LinuxCPU) []write {
	if c == nil {
		return nil
	}
	var w []write
	if c.Shares != nil && *c.Shares != 0 {
		w = append(w, write{file: "cpu.shares", value: utoa(*c.Shares), field: cpuField + "shares"})
	}
	// The period goes first so that a quota valid for the new period fits.
	if c.Period != nil && *c.Period != 0 {
		w = append(w, write{file: "cpu.cfs_period_us", value: utoa(*c.Period), field: cpuField + "period"})
	}
	if c.Quota != nil && *c.Quota != 0 {
		w = append(w, write{file: "cpu.cfs_quota_us", value: itoa(*c.Quota), field: cpuField + "quota"})
	}
	if c.Burst != nil {
		w = append(w, write{file: "cpu.cfs_burst_us", value: utoa(*c.Burst), field: cpuField + "burst"})
	}
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		w = append(w, write{file: "cpu.rt_period_us", value: utoa(*c.RealtimePeriod), field: cpuField + "realtimePeriod"})
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		w = append(w, write{file: "cpu.rt_runtime_us", value: itoa(*c.RealtimeRuntime), field: cpuField + "realtimeRuntime"})
	}
	if c.Idle != nil {
		w = append(w, write{file: "cpu.idle", value: itoa(*c.Idle), field: cpuField + "idle"})
	}
	return w
}

// sharesToWeight maps v1 cpu.shares [2, 262144] linearly onto v2 cpu.weight [1, 10000].
func sharesToWeight(shares uint64) uint64 {
	if shares < 2 {
		shares = 2
	}
	if shares > 262144 {
		shares = 262144
	}
	return 1 + ((shares-2)*9999)/262142
}

func cpuV2(c *specs.LinuxCPU) ([]write, error) {
	if c == nil {
		return nil, nil
	}
	var w []write
	if c.Shares != nil && *c.Shares != 0 {
		w = append(w, write{file: "cpu.weight", value: utoa(sharesToWeight(*c.Shares)), field: cpuField + "shares"})
	}
	quotaSet := c.Quota != nil && *c.Quota != 0
	periodSet := c.Period != nil && *c.Period != 0
	if quotaSet || periodSet {
		v := "max"
		if quotaSet && *c.Quota > 0 {
			v = itoa(*c.Quota)
		}
		field := cpuField + "quota"
		if periodSet {
			v += " " + utoa(*c.Period)
			if !quotaSet {
				field = cpuField + "period"
			}
		}
		w = append(w, write{file: "cpu.max", value: v, field: field})
	}
	if c.Burst != nil {
		w = append(w, write{file: "cpu.max.burst", value: utoa(*c.Burst), field: cpuField + "burst"})
	}
	if (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) || (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) {
		return nil, fmt.Errorf("%srealtimeRuntime/realtimePeriod: cgroup v2 has no realtime group scheduling: %w", cpuField, errdefs.ErrNotImplemented)
	}
	if c.Idle != nil {
		w = append(w, write{file: "cpu.idle", value: itoa(*c.Idle), field: cpuField + "idle"})
	}
	return w, nil
}

// cpusetWrites is the same on v1 and v2.
func cpusetWrites(c *specs.LinuxCPU) []write {
	if c == nil {
		return nil
	}
	var w []write
	if c.Cpus != "" {
		w = append(w, write{file: "cpuset.cpus", value: c.Cpus, field: cpuField + "cpus"})
	}
	if c.Mems != "" {
		w = append(w, write{file: "cpuset.mems", value: c.Mems, field: cpuField + "mems"})
	}
	return w
}

// pidsWrites is the same on v1 and v2; a limit <= 0 means no limit.
func pidsWrites(p *specs.LinuxPids) []write {
	if p == nil || p.Limit == nil {
		return nil
	}
	v := "max"
	if *p.Limit > 0 {
		v = itoa(*p.Limit)
	}
	return []write{{file: "pids.max", value: v, field: "linux.resources.pids.limit"}}
}

const blkField = "linux.resources.blockIO."

func devNum(d specs.LinuxBlockIODevice) string {
	return itoa(d.Major) + ":" + itoa(d.Minor)
}

// blkioV1 uses the CFQ names; the manager falls back to the BFQ names
// (blkio.bfq.weight, blkio.bfq.weight_device) when the CFQ file is absent.
func blkioV1(b *specs.LinuxBlockIO) []write {
	if b == nil {
		return nil
	}
	var w []write
	if b.Weight != nil && *b.Weight != 0 {
		w = append(w, write{file: "blkio.weight", value: utoa(uint64(*b.Weight)), field: blkField + "weight"})
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		w = append(w, write{file: "blkio.leaf_weight", value: utoa(uint64(*b.LeafWeight)), field: blkField + "leafWeight", optional: true})
	}
	for i, d := range b.WeightDevice {
		f := fmt.Sprintf("%sweightDevice[%d]", blkField, i)
		if d.Weight != nil {
			w = append(w, write{file: "blkio.weight_device", value: devNum(d.LinuxBlockIODevice) + " " + utoa(uint64(*d.Weight)), field: f + ".weight"})
		}
		if d.LeafWeight != nil {
			w = append(w, write{file: "blkio.leaf_weight_device", value: devNum(d.LinuxBlockIODevice) + " " + utoa(uint64(*d.LeafWeight)), field: f + ".leafWeight", optional: true})
		}
	}
	throttle := func(list []specs.LinuxThrottleDevice, file, name string) {
		for i, d := range list {
			w = append(w, write{file: file, value: devNum(d.LinuxBlockIODevice) + " " + utoa(d.Rate), field: fmt.Sprintf("%s%s[%d]", blkField, name, i)})
		}
	}
	throttle(b.ThrottleReadBpsDevice, "blkio.throttle.read_bps_device", "throttleReadBpsDevice")
	throttle(b.ThrottleWriteBpsDevice, "blkio.throttle.write_bps_device", "throttleWriteBpsDevice")
	throttle(b.ThrottleReadIOPSDevice, "blkio.throttle.read_iops_device", "throttleReadIOPSDevice")
	throttle(b.ThrottleWriteIOPSDevice, "blkio.throttle.write_iops_device", "throttleWriteIOPSDevice")
	return w
}

// blkioWeightToIOWeight maps v1 blkio.weight [10, 1000] linearly onto v2 io.weight [1, 10000].
func blkioWeightToIOWeight(w uint16) uint64 {
	if w < 10 {
		w = 10
	}
	if w > 1000 {
		w = 1000
	}
	return 1 + (uint64(w)-10)*9999/990
}

// ioV2 plans io.weight (converted) and io.max. If bfq is true the BFQ
// scheduler's io.bfq.weight, which keeps blkio's [1, 1000] range, is used.
func ioV2(b *specs.LinuxBlockIO, bfq bool) []write {
	if b == nil {
		return nil
	}
	var w []write
	weight := func(v uint16) string {
		if bfq {
			return utoa(uint64(v))
		}
		return utoa(blkioWeightToIOWeight(v))
	}
	wfile := "io.weight"
	if bfq {
		wfile = "io.bfq.weight"
	}
	if b.Weight != nil && *b.Weight != 0 {
		v := weight(*b.Weight)
		if !bfq {
			v = "default " + v
		}
		w = append(w, write{file: wfile, value: v, field: blkField + "weight"})
	}
	for i, d := range b.WeightDevice {
		if d.Weight != nil {
			w = append(w, write{file: wfile, value: devNum(d.LinuxBlockIODevice) + " " + weight(*d.Weight), field: fmt.Sprintf("%sweightDevice[%d].weight", blkField, i)})
		}
	}
	throttle := func(list []specs.LinuxThrottleDevice, key, name string) {
		for i, d := range list {
			v := "max"
			if d.Rate != 0 {
				v = utoa(d.Rate)
			}
			w = append(w, write{file: "io.max", value: devNum(d.LinuxBlockIODevice) + " " + key + "=" + v, field: fmt.Sprintf("%s%s[%d]", blkField, name, i)})
		}
	}
	throttle(b.ThrottleReadBpsDevice, "rbps", "throttleReadBpsDevice")
	throttle(b.ThrottleWriteBpsDevice, "wbps", "throttleWriteBpsDevice")
	throttle(b.ThrottleReadIOPSDevice, "riops", "throttleReadIOPSDevice")
	throttle(b.ThrottleWriteIOPSDevice, "wiops", "throttleWriteIOPSDevice")
	return w
}

// hugetlbWrites plans the limit and, where the kernel has it, the
// reservation limit (the spec prefers reservations when supported).
func hugetlbWrites(h []specs.LinuxHugepageLimit, v2 bool) []write {
	var w []write
	for i, l := range h {
		f := fmt.Sprintf("linux.resources.hugepageLimits[%d]", i)
		limit, rsvd := "hugetlb."+l.Pagesize+".limit_in_bytes", "hugetlb."+l.Pagesize+".rsvd.limit_in_bytes"
		if v2 {
			limit, rsvd = "hugetlb."+l.Pagesize+".max", "hugetlb."+l.Pagesize+".rsvd.max"
		}
		w = append(w,
			write{file: limit, value: utoa(l.Limit), field: f},
			write{file: rsvd, value: utoa(l.Limit), field: f, optional: true})
	}
	return w
}

// rdmaWrites is the same on v1 and v2: one rdma.max line per device.
func rdmaWrites(r map[string]specs.LinuxRdma) []write {
	names := make([]string, 0, len(r))
	for n := range r {
		names = append(names, n)
	}
	sort.Strings(names)
	var w []write
	for _, n := range names {
		l := r[n]
		v := n
		if l.HcaHandles != nil {
			v += " hca_handle=" + utoa(uint64(*l.HcaHandles))
		}
		if l.HcaObjects != nil {
			v += " hca_object=" + utoa(uint64(*l.HcaObjects))
		}
		if v == n {
			continue
		}
		w = append(w, write{file: "rdma.max", value: v, field: fmt.Sprintf("linux.resources.rdma[%q]", n)})
	}
	return w
}

func netClsWrites(n *specs.LinuxNetwork) []write {
	if n == nil || n.ClassID == nil {
		return nil
	}
	return []write{{file: "net_cls.classid", value: utoa(uint64(*n.ClassID)), field: "linux.resources.network.classID"}}
}

func netPrioWrites(n *specs.LinuxNetwork) []write {
	if n == nil {
		return nil
	}
	var w []write
	for i, p := range n.Priorities {
		w = append(w, write{file: "net_prio.ifpriomap", value: p.Name + " " + utoa(uint64(p.Priority)), field: fmt.Sprintf("linux.resources.network.priorities[%d]", i)})
	}
	return w
}

// v2StructuredFiles lists the v2 files the structured fields of r would
// write, file -> field, to detect conflicts with linux.resources.unified.
func v2StructuredFiles(r *specs.LinuxResources) map[string]string {
	out := map[string]string{}
	add := func(ws []write) {
		for _, w := range ws {
			if _, ok := out[w.file]; !ok {
				out[w.file] = w.field
			}
		}
	}
	if ws, err := memoryV2(r.Memory); err == nil {
		add(ws)
	}
	if ws, err := cpuV2(r.CPU); err == nil {
		add(ws)
	}
	add(cpusetWrites(r.CPU))
	add(pidsWrites(r.Pids))
	add(ioV2(r.BlockIO, false))
	add(ioV2(r.BlockIO, true))
	add(hugetlbWrites(r.HugepageLimits, true))
	add(rdmaWrites(r.Rdma))
	return out
}
