package cgroup

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// pagesizeRE is compiled on first use, not at package init (which every
// gantry-oci process, the container's init included, would pay).
var pagesizeRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^[1-9][0-9]*(KB|MB|GB|TB|PB)$`)
})

// Validate checks r without touching the system. Zero values mean "unset"
// for the limits runc treats that way (memory, cpu shares/quota/period).
func Validate(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if m := r.Memory; m != nil {
		for _, f := range []struct {
			name string
			v    *int64
		}{{"limit", m.Limit}, {"reservation", m.Reservation}, {"swap", m.Swap}, {"kernel", m.Kernel}, {"kernelTCP", m.KernelTCP}} {
			if f.v != nil && *f.v < -1 {
				add(invalid(memField+f.name, "%d is below -1", *f.v))
			}
		}
		if m.Swap != nil && m.Limit != nil && *m.Swap > 0 && *m.Limit > 0 && *m.Swap < *m.Limit {
			add(invalid(memField+"swap", "%d (memory+swap) is below memory limit %d", *m.Swap, *m.Limit))
		}
		if m.Swap != nil && *m.Swap > 0 && m.Limit != nil && *m.Limit == -1 {
			add(invalid(memField+"swap", "%d is set while memory limit is unlimited (-1)", *m.Swap))
		}
		if m.Swappiness != nil && *m.Swappiness > 100 {
			add(invalid(memField+"swappiness", "%d is above 100", *m.Swappiness))
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 && (*c.Shares < 2 || *c.Shares > 262144) {
			add(invalid(cpuField+"shares", "%d is outside [2, 262144]", *c.Shares))
		}
		if c.Quota != nil && *c.Quota != 0 && *c.Quota != -1 && *c.Quota < 1000 {
			add(invalid(cpuField+"quota", "%d is below 1000us (use -1 for no limit)", *c.Quota))
		}
		if c.Period != nil && *c.Period != 0 && (*c.Period < 1000 || *c.Period > 1000000) {
			add(invalid(cpuField+"period", "%d is outside [1000, 1000000]us", *c.Period))
		}
		if c.Burst != nil && c.Quota != nil && *c.Quota > 0 && *c.Burst > uint64(*c.Quota) {
			add(invalid(cpuField+"burst", "%d is above quota %d", *c.Burst, *c.Quota))
		}
		if c.RealtimeRuntime != nil && *c.RealtimeRuntime < -1 {
			add(invalid(cpuField+"realtimeRuntime", "%d is below -1", *c.RealtimeRuntime))
		}
		if c.RealtimeRuntime != nil && c.RealtimePeriod != nil && *c.RealtimeRuntime > 0 && *c.RealtimePeriod > 0 && uint64(*c.RealtimeRuntime) > *c.RealtimePeriod {
			add(invalid(cpuField+"realtimeRuntime", "%d is above realtimePeriod %d", *c.RealtimeRuntime, *c.RealtimePeriod))
		}
		if c.Cpus != "" {
			if err := checkList(c.Cpus); err != nil {
				add(invalid(cpuField+"cpus", "%q: %v", c.Cpus, err))
			}
		}
		if c.Mems != "" {
			if err := checkList(c.Mems); err != nil {
				add(invalid(cpuField+"mems", "%q: %v", c.Mems, err))
			}
		}
		if c.Idle != nil && *c.Idle != 0 && *c.Idle != 1 {
			add(invalid(cpuField+"idle", "%d is neither 0 nor 1", *c.Idle))
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil && *p.Limit < -1 {
		add(invalid("linux.resources.pids.limit", "%d is below -1", *p.Limit))
	}
	if b := r.BlockIO; b != nil {
		checkWeight := func(field string, w *uint16) {
			if w != nil && *w != 0 && (*w < 10 || *w > 1000) {
				add(invalid(field, "%d is outside [10, 1000]", *w))
			}
		}
		checkDev := func(field string, d specs.LinuxBlockIODevice) {
			if d.Major < 0 || d.Minor < 0 {
				add(invalid(field, "device %d:%d has a negative number", d.Major, d.Minor))
			}
		}
		checkWeight(blkField+"weight", b.Weight)
		checkWeight(blkField+"leafWeight", b.LeafWeight)
		for i, d := range b.WeightDevice {
			f := fmt.Sprintf("%sweightDevice[%d]", blkField, i)
			checkDev(f, d.LinuxBlockIODevice)
			checkWeight(f+".weight", d.Weight)
			checkWeight(f+".leafWeight", d.LeafWeight)
			if d.Weight == nil && d.LeafWeight == nil {
				add(invalid(f, "neither weight nor leafWeight is set"))
			}
		}
		for name, list := range map[string][]specs.LinuxThrottleDevice{
			"throttleReadBpsDevice": b.ThrottleReadBpsDevice, "throttleWriteBpsDevice": b.ThrottleWriteBpsDevice,
			"throttleReadIOPSDevice": b.ThrottleReadIOPSDevice, "throttleWriteIOPSDevice": b.ThrottleWriteIOPSDevice,
		} {
			for i, d := range list {
				checkDev(fmt.Sprintf("%s%s[%d]", blkField, name, i), d.LinuxBlockIODevice)
			}
		}
	}
	for i, h := range r.HugepageLimits {
		if !pagesizeRE().MatchString(h.Pagesize) {
			add(invalid(fmt.Sprintf("linux.resources.hugepageLimits[%d].pageSize", i), "%q is not <number><KB|MB|GB|TB|PB>", h.Pagesize))
		}
	}
	if n := r.Network; n != nil {
		for i, p := range n.Priorities {
			if p.Name == "" || strings.ContainsAny(p.Name, " \t\n/") || len(p.Name) > 15 {
				add(invalid(fmt.Sprintf("linux.resources.network.priorities[%d].name", i), "%q is not an interface name", p.Name))
			}
		}
	}
	for name := range r.Rdma {
		if name == "" || strings.ContainsAny(name, " \t\n") {
			add(invalid("linux.resources.rdma", "%q is not an rdma device name", name))
		}
	}
	for i, d := range r.Devices {
		if _, err := parseDeviceRule(d); err != nil {
			add(fmt.Errorf("linux.resources.devices[%d]: %w", i, err))
		}
	}
	if len(r.Unified) > 0 {
		structured := v2StructuredFiles(r)
		keys := make([]string, 0, len(r.Unified))
		for k := range r.Unified {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			f := fmt.Sprintf("linux.resources.unified[%q]", k)
			switch {
			case k == "" || k == "." || k == ".." || strings.Contains(k, "/") || strings.ContainsAny(k, "\x00"):
				add(invalid(f, "not a file name"))
			case !strings.Contains(k, "."):
				add(invalid(f, "not a <controller>.<file> name"))
			case k == "cgroup.procs" || k == "cgroup.threads" || k == "cgroup.freeze" || k == "cgroup.kill" || k == "cgroup.subtree_control":
				add(invalid(f, "managed by the runtime, cannot be set"))
			case structured[k] != "":
				add(invalid(f, "conflicts with %s", structured[k]))
			}
		}
	}
	if len(errs) > 0 {
		return errs[0] // one line for the user: the first field at fault
	}
	return nil
}

// checkList checks the kernel's cpu/node list syntax: "0-3,5,7-8".
func checkList(s string) error {
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		a, err := strconv.ParseUint(lo, 10, 32)
		if err != nil {
			return fmt.Errorf("bad element %q", part)
		}
		if isRange {
			b, err := strconv.ParseUint(hi, 10, 32)
			if err != nil || b < a {
				return fmt.Errorf("bad range %q", part)
			}
		}
	}
	return nil
}
