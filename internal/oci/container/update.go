package container

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// Update changes the resources of a created, running or paused container.
// delta holds only what changes; as in runc, a zero number means "leave
// unchanged" (except swappiness and burst). delta is merged onto the
// resources saved in the container's state, the merge is validated, the
// changed resources are written to the cgroup, and the merge is saved so
// that a later update builds on it. A memory limit below the current usage
// is refused unless delta sets memory.checkBeforeUpdate to false. When the
// kernel refuses a write, what was already written is put back (best
// effort) and nothing is saved.
func (r *Runtime) Update(id string, delta *specs.LinuxResources) error {
	if err := state.ValidateID(id); err != nil {
		return err
	}
	unlock, err := r.Store.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := r.Store.Load(id)
	if err != nil {
		return err
	}
	if st := r.status(c); st == state.Stopped {
		return fmt.Errorf("update container %q: it is stopped: %w", id, errdefs.ErrFailedPrecondition)
	}
	cg, err := containerCgroup(c)
	if err != nil {
		return fmt.Errorf("update container %q: %w", id, err)
	}
	var base *specs.LinuxResources
	if c.Spec != nil && c.Spec.Linux != nil {
		base = c.Spec.Linux.Resources
	}
	merged, applied, err := PlanUpdate(base, delta)
	if err != nil {
		return fmt.Errorf("update container %q: %w", id, err)
	}
	if err := cg.Set(applied); err != nil {
		if rb := rollbackOf(applied, base); rb != nil {
			if rerr := cg.Set(rb); rerr != nil {
				r.Log.Warn("update: restore previous resources", "id", id, "error", rerr)
			}
		}
		return fmt.Errorf("update container %q: %w", id, err)
	}
	if c.Spec == nil {
		c.Spec = &specs.Spec{}
	}
	if c.Spec.Linux == nil {
		c.Spec.Linux = &specs.Linux{}
	}
	c.Spec.Linux.Resources = merged
	if err := r.Store.Save(c); err != nil {
		return fmt.Errorf("update container %q: resources applied but not saved: %w", id, err)
	}
	return nil
}

// PlanUpdate merges delta onto base and returns the merge (to save) and
// the resources to write to the cgroup: delta's fields, completed with the
// merged values of the fields that must be written together (memory limit
// and swap, cpu quota and period, realtime runtime and period). Both are
// validated. base and delta are not modified.
func PlanUpdate(base, delta *specs.LinuxResources) (merged, applied *specs.LinuxResources, err error) {
	d := normalizeDelta(delta)
	if len(d.Devices) > 0 && (base == nil || !reflect.DeepEqual(d.Devices, base.Devices)) {
		return nil, nil, fmt.Errorf("linux.resources.devices: device rules cannot be changed by update: %w", errdefs.ErrNotImplemented)
	}
	d.Devices = nil
	merged = MergeResources(base, d)
	if merged.Memory != nil {
		merged.Memory.CheckBeforeUpdate = nil
		if base != nil && base.Memory != nil {
			merged.Memory.CheckBeforeUpdate = base.Memory.CheckBeforeUpdate
		}
	}
	if err := cgroup.Validate(merged); err != nil {
		return nil, nil, err
	}
	applied = copyResources(d)
	if m := applied.Memory; m != nil {
		if m.Limit != nil || m.Swap != nil {
			m.Limit, m.Swap = merged.Memory.Limit, merged.Memory.Swap
		}
		if m.CheckBeforeUpdate == nil && d.Memory.Limit != nil {
			yes := true
			m.CheckBeforeUpdate = &yes
		}
	}
	if c := applied.CPU; c != nil {
		if c.Quota != nil || c.Period != nil {
			c.Quota, c.Period = merged.CPU.Quota, merged.CPU.Period
		}
		if c.RealtimeRuntime != nil || c.RealtimePeriod != nil {
			c.RealtimeRuntime, c.RealtimePeriod = merged.CPU.RealtimeRuntime, merged.CPU.RealtimePeriod
		}
	}
	if err := cgroup.Validate(applied); err != nil {
		return nil, nil, err
	}
	return merged, applied, nil
}

// normalizeDelta copies delta, dropping the zero numbers that runc's
// update treats as "unchanged", and applies runc's fix-up: an unlimited
// memory limit without a swap value makes swap unlimited too.
func normalizeDelta(delta *specs.LinuxResources) *specs.LinuxResources {
	d := copyResources(delta)
	zeroI := func(p **int64) {
		if *p != nil && **p == 0 {
			*p = nil
		}
	}
	zeroU := func(p **uint64) {
		if *p != nil && **p == 0 {
			*p = nil
		}
	}
	if m := d.Memory; m != nil {
		zeroI(&m.Limit)
		zeroI(&m.Reservation)
		zeroI(&m.Swap)
		//lint:ignore SA1019 an old --resources may still carry it; the cgroup package decides
		zeroI(&m.Kernel)
		zeroI(&m.KernelTCP)
		if m.Limit != nil && *m.Limit == -1 && m.Swap == nil {
			unlimited := int64(-1)
			m.Swap = &unlimited
		}
		if reflect.ValueOf(*m).IsZero() {
			d.Memory = nil
		}
	}
	if c := d.CPU; c != nil {
		zeroU(&c.Shares)
		zeroI(&c.Quota)
		zeroU(&c.Period)
		zeroI(&c.RealtimeRuntime)
		zeroU(&c.RealtimePeriod)
		if reflect.ValueOf(*c).IsZero() {
			d.CPU = nil
		}
	}
	if p := d.Pids; p != nil {
		zeroI(&p.Limit)
		if p.Limit == nil {
			d.Pids = nil
		}
	}
	if b := d.BlockIO; b != nil {
		for _, w := range []**uint16{&b.Weight, &b.LeafWeight} {
			if *w != nil && **w == 0 {
				*w = nil
			}
		}
		if reflect.ValueOf(*b).IsZero() {
			d.BlockIO = nil
		}
	}
	return d
}

// copyResources deep-copies r (nil gives an empty value).
func copyResources(r *specs.LinuxResources) *specs.LinuxResources {
	out := &specs.LinuxResources{}
	if r == nil {
		return out
	}
	data, err := json.Marshal(r)
	if err != nil {
		panic(fmt.Sprintf("encode linux.resources: %v", err)) // plain data: cannot fail
	}
	if err := json.Unmarshal(data, out); err != nil {
		panic(fmt.Sprintf("decode linux.resources: %v", err))
	}
	return out
}

// MergeResources returns base with every field that delta sets replaced.
// Lists keyed by something (hugepage limits by page size, block devices by
// major:minor, network priorities by name) and maps (unified, rdma) are
// merged entry by entry. Device rules are taken from delta when it has any.
// base and delta are not modified.
func MergeResources(base, delta *specs.LinuxResources) *specs.LinuxResources {
	out := copyResources(base)
	d := copyResources(delta)
	if m := d.Memory; m != nil {
		if out.Memory == nil {
			out.Memory = &specs.LinuxMemory{}
		}
		o := out.Memory
		setI(&o.Limit, m.Limit)
		setI(&o.Reservation, m.Reservation)
		setI(&o.Swap, m.Swap)
		//lint:ignore SA1019 merged like any other field; the cgroup package decides
		setI(&o.Kernel, m.Kernel)
		setI(&o.KernelTCP, m.KernelTCP)
		setU(&o.Swappiness, m.Swappiness)
		setB(&o.DisableOOMKiller, m.DisableOOMKiller)
		setB(&o.UseHierarchy, m.UseHierarchy)
		setB(&o.CheckBeforeUpdate, m.CheckBeforeUpdate)
	}
	if c := d.CPU; c != nil {
		if out.CPU == nil {
			out.CPU = &specs.LinuxCPU{}
		}
		o := out.CPU
		setU(&o.Shares, c.Shares)
		setI(&o.Quota, c.Quota)
		setU(&o.Burst, c.Burst)
		setU(&o.Period, c.Period)
		setI(&o.RealtimeRuntime, c.RealtimeRuntime)
		setU(&o.RealtimePeriod, c.RealtimePeriod)
		setI(&o.Idle, c.Idle)
		if c.Cpus != "" {
			o.Cpus = c.Cpus
		}
		if c.Mems != "" {
			o.Mems = c.Mems
		}
	}
	if p := d.Pids; p != nil {
		if out.Pids == nil {
			out.Pids = &specs.LinuxPids{}
		}
		setI(&out.Pids.Limit, p.Limit)
	}
	if b := d.BlockIO; b != nil {
		if out.BlockIO == nil {
			out.BlockIO = &specs.LinuxBlockIO{}
		}
		o := out.BlockIO
		if b.Weight != nil {
			o.Weight = b.Weight
		}
		if b.LeafWeight != nil {
			o.LeafWeight = b.LeafWeight
		}
		o.WeightDevice = mergeKeyed(o.WeightDevice, b.WeightDevice, func(w specs.LinuxWeightDevice) string {
			return devKey(w.LinuxBlockIODevice)
		})
		tkey := func(t specs.LinuxThrottleDevice) string { return devKey(t.LinuxBlockIODevice) }
		o.ThrottleReadBpsDevice = mergeKeyed(o.ThrottleReadBpsDevice, b.ThrottleReadBpsDevice, tkey)
		o.ThrottleWriteBpsDevice = mergeKeyed(o.ThrottleWriteBpsDevice, b.ThrottleWriteBpsDevice, tkey)
		o.ThrottleReadIOPSDevice = mergeKeyed(o.ThrottleReadIOPSDevice, b.ThrottleReadIOPSDevice, tkey)
		o.ThrottleWriteIOPSDevice = mergeKeyed(o.ThrottleWriteIOPSDevice, b.ThrottleWriteIOPSDevice, tkey)
	}
	out.HugepageLimits = mergeKeyed(out.HugepageLimits, d.HugepageLimits, func(h specs.LinuxHugepageLimit) string { return h.Pagesize })
	if n := d.Network; n != nil {
		if out.Network == nil {
			out.Network = &specs.LinuxNetwork{}
		}
		if n.ClassID != nil {
			out.Network.ClassID = n.ClassID
		}
		out.Network.Priorities = mergeKeyed(out.Network.Priorities, n.Priorities, func(p specs.LinuxInterfacePriority) string { return p.Name })
	}
	for k, v := range d.Rdma {
		if out.Rdma == nil {
			out.Rdma = map[string]specs.LinuxRdma{}
		}
		out.Rdma[k] = v
	}
	for k, v := range d.Unified {
		if out.Unified == nil {
			out.Unified = map[string]string{}
		}
		out.Unified[k] = v
	}
	if len(d.Devices) > 0 {
		out.Devices = d.Devices
	}
	return out
}

func setI(dst **int64, v *int64) {
	if v != nil {
		*dst = v
	}
}

func setU(dst **uint64, v *uint64) {
	if v != nil {
		*dst = v
	}
}

func setB(dst **bool, v *bool) {
	if v != nil {
		*dst = v
	}
}

func devKey(d specs.LinuxBlockIODevice) string {
	return strconv.FormatInt(d.Major, 10) + ":" + strconv.FormatInt(d.Minor, 10)
}

// mergeKeyed replaces the entries of base whose key is in delta and
// appends delta's new entries, keeping base's order.
func mergeKeyed[T any](base, delta []T, key func(T) string) []T {
	if len(delta) == 0 {
		return base
	}
	idx := make(map[string]int, len(base))
	for i, e := range base {
		idx[key(e)] = i
	}
	out := append([]T(nil), base...)
	for _, e := range delta {
		if i, ok := idx[key(e)]; ok {
			out[i] = e
			continue
		}
		idx[key(e)] = len(out)
		out = append(out, e)
	}
	return out
}

// rollbackOf returns the resources that put back what applied changed:
// base's values, or "unlimited" for the limits base left unset. Fields it
// cannot restore (no previous value and no neutral one) are left out.
func rollbackOf(applied, base *specs.LinuxResources) *specs.LinuxResources {
	if base == nil {
		base = &specs.LinuxResources{}
	}
	unlimited := func() *int64 { v := int64(-1); return &v }
	rb := &specs.LinuxResources{}
	if m := applied.Memory; m != nil {
		b := base.Memory
		if b == nil {
			b = &specs.LinuxMemory{}
		}
		r := &specs.LinuxMemory{}
		if m.Limit != nil || m.Swap != nil {
			r.Limit, r.Swap = b.Limit, b.Swap
			if r.Limit == nil || *r.Limit == 0 {
				r.Limit = unlimited()
			}
			if r.Swap == nil || *r.Swap == 0 {
				r.Swap = unlimited()
			}
		}
		if m.Reservation != nil {
			r.Reservation = b.Reservation
		}
		if m.Swappiness != nil {
			r.Swappiness = b.Swappiness
		}
		rb.Memory = r
	}
	if c := applied.CPU; c != nil {
		b := base.CPU
		if b == nil {
			b = &specs.LinuxCPU{}
		}
		r := &specs.LinuxCPU{}
		if c.Shares != nil {
			r.Shares = b.Shares
		}
		if c.Quota != nil || c.Period != nil {
			r.Quota, r.Period = b.Quota, b.Period
			if r.Quota == nil || *r.Quota == 0 {
				r.Quota = unlimited()
			}
		}
		if c.Cpus != "" {
			r.Cpus = b.Cpus
		}
		if c.Mems != "" {
			r.Mems = b.Mems
		}
		rb.CPU = r
	}
	if applied.Pids != nil {
		rb.Pids = &specs.LinuxPids{Limit: unlimited()}
		if base.Pids != nil && base.Pids.Limit != nil {
			rb.Pids.Limit = base.Pids.Limit
		}
	}
	if applied.BlockIO != nil && applied.BlockIO.Weight != nil && base.BlockIO != nil && base.BlockIO.Weight != nil {
		rb.BlockIO = &specs.LinuxBlockIO{Weight: base.BlockIO.Weight}
	}
	if reflect.ValueOf(*rb).IsZero() {
		return nil
	}
	return rb
}

// UpdateFlags are update's per-resource flags as typed by the user; ""
// means not given. Numbers of 0 mean "unchanged", as in runc.
type UpdateFlags struct {
	Memory            string // --memory
	MemoryReservation string // --memory-reservation
	MemorySwap        string // --memory-swap (memory+swap; -1: unlimited)
	CPUShares         string // --cpu-share
	CPUQuota          string // --cpu-quota
	CPUPeriod         string // --cpu-period
	CPURtPeriod       string // --cpu-rt-period
	CPURtRuntime      string // --cpu-rt-runtime
	CpusetCpus        string // --cpuset-cpus
	CpusetMems        string // --cpuset-mems
	PidsLimit         string // --pids-limit (-1: unlimited)
	BlkioWeight       string // --blkio-weight
}

// Apply parses the given flags into r, overriding what r (from
// --resources) already holds.
func (f *UpdateFlags) Apply(r *specs.LinuxResources) error {
	mem := func() *specs.LinuxMemory {
		if r.Memory == nil {
			r.Memory = &specs.LinuxMemory{}
		}
		return r.Memory
	}
	cpu := func() *specs.LinuxCPU {
		if r.CPU == nil {
			r.CPU = &specs.LinuxCPU{}
		}
		return r.CPU
	}
	for _, m := range []struct {
		flag, val string
		dst       func() **int64
	}{
		{"--memory", f.Memory, func() **int64 { return &mem().Limit }},
		{"--memory-reservation", f.MemoryReservation, func() **int64 { return &mem().Reservation }},
		{"--memory-swap", f.MemorySwap, func() **int64 { return &mem().Swap }},
	} {
		if m.val == "" {
			continue
		}
		v, err := ParseMemory(m.val)
		if err != nil {
			return fmt.Errorf("%s %q: %w", m.flag, m.val, err)
		}
		*m.dst() = &v
	}
	for _, u := range []struct {
		flag, val string
		dst       func() **uint64
	}{
		{"--cpu-share", f.CPUShares, func() **uint64 { return &cpu().Shares }},
		{"--cpu-period", f.CPUPeriod, func() **uint64 { return &cpu().Period }},
		{"--cpu-rt-period", f.CPURtPeriod, func() **uint64 { return &cpu().RealtimePeriod }},
	} {
		if u.val == "" {
			continue
		}
		v, err := strconv.ParseUint(u.val, 10, 64)
		if err != nil {
			return fmt.Errorf("%s %q: not a non-negative integer: %w", u.flag, u.val, errdefs.ErrInvalidArgument)
		}
		*u.dst() = &v
	}
	for _, s := range []struct {
		flag, val string
		dst       func() **int64
	}{
		{"--cpu-quota", f.CPUQuota, func() **int64 { return &cpu().Quota }},
		{"--cpu-rt-runtime", f.CPURtRuntime, func() **int64 { return &cpu().RealtimeRuntime }},
		{"--pids-limit", f.PidsLimit, func() **int64 {
			if r.Pids == nil {
				r.Pids = &specs.LinuxPids{}
			}
			return &r.Pids.Limit
		}},
	} {
		if s.val == "" {
			continue
		}
		v, err := strconv.ParseInt(s.val, 10, 64)
		if err != nil {
			return fmt.Errorf("%s %q: not an integer: %w", s.flag, s.val, errdefs.ErrInvalidArgument)
		}
		*s.dst() = &v
	}
	if f.CpusetCpus != "" {
		cpu().Cpus = f.CpusetCpus
	}
	if f.CpusetMems != "" {
		cpu().Mems = f.CpusetMems
	}
	if f.BlkioWeight != "" {
		v, err := strconv.ParseUint(f.BlkioWeight, 10, 16)
		if err != nil {
			return fmt.Errorf("--blkio-weight %q: not an integer in [10, 1000]: %w", f.BlkioWeight, errdefs.ErrInvalidArgument)
		}
		w := uint16(v)
		if r.BlockIO == nil {
			r.BlockIO = &specs.LinuxBlockIO{}
		}
		r.BlockIO.Weight = &w
	}
	return nil
}

// ReadResources decodes a runtime-spec LinuxResources JSON object (what
// "update --resources" reads). Unknown fields are an error, so that a typo
// does not silently change nothing.
func ReadResources(rd io.Reader, name string) (*specs.LinuxResources, error) {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	var r specs.LinuxResources
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("--resources %s: decode linux resources JSON: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	return &r, nil
}

// memoryRE is compiled on first use (update only), not at package init.
var memoryRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$`)
})

// ParseMemory parses a memory size as runc's update does: plain bytes or a
// number with a binary unit (k, m, g, t, p; "64m", "1.5G", "512KiB",
// "10mb" all work), and "-1" for unlimited.
func ParseMemory(s string) (int64, error) {
	if s == "-1" {
		return -1, nil
	}
	m := memoryRE().FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("not a memory size (bytes, or a number with k, m, g, t or p; -1 for unlimited): %w", errdefs.ErrInvalidArgument)
	}
	mult := 1.0
	switch strings.ToLower(m[2]) {
	case "k":
		mult = 1 << 10
	case "m":
		mult = 1 << 20
	case "g":
		mult = 1 << 30
	case "t":
		mult = 1 << 40
	case "p":
		mult = 1 << 50
	}
	if !strings.Contains(m[1], ".") {
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > math.MaxInt64/int64(mult) {
			return 0, fmt.Errorf("too large: %w", errdefs.ErrInvalidArgument)
		}
		return n * int64(mult), nil
	}
	f, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, fmt.Errorf("not a number: %w", errdefs.ErrInvalidArgument)
	}
	v := f * mult
	if v >= math.MaxInt64 {
		return 0, fmt.Errorf("too large: %w", errdefs.ErrInvalidArgument)
	}
	return int64(v), nil
}
