package sched

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

var policies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther:    0, // SCHED_NORMAL
	specs.SchedFIFO:     1,
	specs.SchedRR:       2,
	specs.SchedBatch:    3,
	specs.SchedISO:      4, // reserved; mainline kernels refuse it
	specs.SchedIdle:     5,
	specs.SchedDeadline: 6,
}

var flags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork:  unix.SCHED_FLAG_RESET_ON_FORK,
	specs.SchedFlagReclaim:      unix.SCHED_FLAG_RECLAIM,
	specs.SchedFlagDLOverrun:    unix.SCHED_FLAG_DL_OVERRUN,
	specs.SchedFlagKeepPolicy:   unix.SCHED_FLAG_KEEP_POLICY,
	specs.SchedFlagKeepParams:   unix.SCHED_FLAG_KEEP_PARAMS,
	specs.SchedFlagUtilClampMin: unix.SCHED_FLAG_UTIL_CLAMP_MIN,
	specs.SchedFlagUtilClampMax: unix.SCHED_FLAG_UTIL_CLAMP_MAX,
}

func invalid(field, format string, a ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, a...), errdefs.ErrInvalidArgument)
}

// ValidateScheduler checks process.scheduler: a known policy and flags, nice
// in -20..19, priority only (and then 1..99) for SCHED_FIFO and SCHED_RR,
// runtime/deadline/period only for SCHED_DEADLINE with
// runtime <= deadline <= period. A nil s is valid.
func ValidateScheduler(s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	if s.Policy == "" {
		return invalid("process.scheduler.policy", "is required")
	}
	if _, ok := policies[s.Policy]; !ok {
		return invalid("process.scheduler.policy", "unknown policy %q", s.Policy)
	}
	for i, f := range s.Flags {
		if _, ok := flags[f]; !ok {
			return invalid(fmt.Sprintf("process.scheduler.flags[%d]", i), "unknown flag %q", f)
		}
	}
	if s.Nice < -20 || s.Nice > 19 {
		return invalid("process.scheduler.nice", "%d is outside -20..19", s.Nice)
	}
	rt := s.Policy == specs.SchedFIFO || s.Policy == specs.SchedRR
	switch {
	case rt && (s.Priority < 1 || s.Priority > 99):
		return invalid("process.scheduler.priority", "%d is outside 1..99 for %s", s.Priority, s.Policy)
	case !rt && s.Priority != 0:
		return invalid("process.scheduler.priority", "only SCHED_FIFO and SCHED_RR take a priority, not %s", s.Policy)
	}
	if s.Policy != specs.SchedDeadline {
		if s.Runtime != 0 || s.Deadline != 0 || s.Period != 0 {
			return invalid("process.scheduler", "runtime, deadline and period are only for SCHED_DEADLINE, not %s", s.Policy)
		}
		return nil
	}
	if s.Runtime == 0 {
		return invalid("process.scheduler.runtime", "is required for SCHED_DEADLINE")
	}
	if s.Deadline != 0 && s.Runtime > s.Deadline {
		return invalid("process.scheduler.runtime", "%d exceeds deadline %d", s.Runtime, s.Deadline)
	}
	if s.Period != 0 {
		dl := s.Deadline
		if dl == 0 {
			dl = s.Runtime
		}
		if dl > s.Period {
			return invalid("process.scheduler.deadline", "%d exceeds period %d", dl, s.Period)
		}
	}
	return nil
}

// SetScheduler applies s to the thread pid (0 is the calling thread) with
// sched_setattr(2). A nil s does nothing.
func SetScheduler(pid int, s *specs.Scheduler) error {
	if s == nil {
		return nil
	}
	if err := ValidateScheduler(s); err != nil {
		return err
	}
	attr := unix.SchedAttr{
		Size:     unix.SizeofSchedAttr,
		Policy:   policies[s.Policy],
		Nice:     s.Nice,
		Priority: uint32(s.Priority),
		Runtime:  s.Runtime,
		Deadline: s.Deadline,
		Period:   s.Period,
	}
	for _, f := range s.Flags {
		attr.Flags |= flags[f]
	}
	if s.Policy == specs.SchedDeadline && attr.Deadline == 0 {
		attr.Deadline = attr.Runtime
	}
	if attr.Flags&unix.SCHED_FLAG_UTIL_CLAMP_MAX != 0 {
		// The spec has no util_max field; 1024 (no clamping) is the only
		// neutral value. util_min stays 0.
		attr.Util_max = 1024
	}
	if err := unix.SchedSetAttr(pid, &attr, 0); err != nil {
		return fmt.Errorf("process.scheduler: sched_setattr policy %s: %w", s.Policy, err)
	}
	return nil
}

var ioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT:   1,
	specs.IOPRIO_CLASS_BE:   2,
	specs.IOPRIO_CLASS_IDLE: 3,
}

const (
	ioprioClassShift = 13
	ioprioWhoProcess = 1
)

// ValidateIOPriority checks process.ioPriority: a known class and a priority
// in 0..7. A nil p is valid.
func ValidateIOPriority(p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	if _, ok := ioClasses[p.Class]; !ok {
		return invalid("process.ioPriority.class", "unknown class %q", p.Class)
	}
	if p.Priority < 0 || p.Priority > 7 {
		return invalid("process.ioPriority.priority", "%d is outside 0..7", p.Priority)
	}
	return nil
}

// SetIOPriority applies p to pid (0 is the calling thread) with ioprio_set(2).
// A nil p does nothing.
func SetIOPriority(pid int, p *specs.LinuxIOPriority) error {
	if p == nil {
		return nil
	}
	if err := ValidateIOPriority(p); err != nil {
		return err
	}
	prio := ioClasses[p.Class]<<ioprioClassShift | p.Priority
	if _, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(pid), uintptr(prio)); errno != 0 {
		return fmt.Errorf("process.ioPriority: ioprio_set %s %d: %w", p.Class, p.Priority, errno)
	}
	return nil
}

// ParseCPUList parses a Linux CPU list such as "0-3,5" (as in cpuset.cpus and
// process.execCPUAffinity) into a CPU set.
func ParseCPUList(s string) (unix.CPUSet, error) {
	var set unix.CPUSet
	limit := int(unsafe.Sizeof(set)) * 8
	s = strings.TrimSpace(s)
	if s == "" {
		return set, fmt.Errorf("empty cpu list: %w", errdefs.ErrInvalidArgument)
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		first, err := cpuNumber(lo, limit)
		if err != nil {
			return set, fmt.Errorf("cpu list %q: %w", s, err)
		}
		last := first
		if isRange {
			if last, err = cpuNumber(hi, limit); err != nil {
				return set, fmt.Errorf("cpu list %q: %w", s, err)
			}
			if last < first {
				return set, fmt.Errorf("cpu list %q: range %q is reversed: %w", s, part, errdefs.ErrInvalidArgument)
			}
		}
		for c := first; c <= last; c++ {
			set.Set(c)
		}
	}
	return set, nil
}

func cpuNumber(s string, limit int) (int, error) {
	s = strings.TrimSpace(s)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 || s[0] == '+' {
		return 0, fmt.Errorf("%q is not a cpu number: %w", s, errdefs.ErrInvalidArgument)
	}
	if n >= limit {
		return 0, fmt.Errorf("cpu %d is beyond the supported %d: %w", n, limit, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// SetCPUAffinity restricts the thread pid (0 is the calling thread) to the
// CPUs in the list cpus. An empty list does nothing.
func SetCPUAffinity(pid int, cpus string) error {
	if strings.TrimSpace(cpus) == "" {
		return nil
	}
	set, err := ParseCPUList(cpus)
	if err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(pid, &set); err != nil {
		return fmt.Errorf("set cpu affinity %q: %w", cpus, err)
	}
	return nil
}

// Personality domains from <linux/personality.h>.
const (
	perLinux   = 0x0000
	perLinux32 = 0x0008
)

// SetPersonality sets the execution domain of the calling process for the
// next execve. Only the LINUX and LINUX32 domains exist and no flags are
// defined by the spec; any flag is an error. A nil p does nothing.
func SetPersonality(p *specs.LinuxPersonality) error {
	if p == nil {
		return nil
	}
	var persona uintptr
	switch p.Domain {
	case specs.PerLinux:
		persona = perLinux
	case specs.PerLinux32:
		persona = perLinux32
	default:
		return invalid("linux.personality.domain", "unknown domain %q", p.Domain)
	}
	if len(p.Flags) > 0 {
		return invalid("linux.personality.flags", "unknown flag %q", p.Flags[0])
	}
	if _, _, errno := unix.Syscall(unix.SYS_PERSONALITY, persona, 0, 0); errno != 0 {
		return fmt.Errorf("linux.personality: personality %s: %w", p.Domain, errno)
	}
	return nil
}

// SetOOMScoreAdj writes adj to /proc/PID/oom_score_adj (pid 0 is the calling
// process). adj must be in -1000..1000; lowering the value needs
// CAP_SYS_RESOURCE.
func SetOOMScoreAdj(pid int, adj int) error {
	if adj < -1000 || adj > 1000 {
		return invalid("process.oomScoreAdj", "%d is outside -1000..1000", adj)
	}
	p := "self"
	if pid != 0 {
		p = strconv.Itoa(pid)
	}
	path := "/proc/" + p + "/oom_score_adj"
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("process.oomScoreAdj: %w", err)
	}
	defer f.Close()
	if _, err := f.WriteString(strconv.Itoa(adj)); err != nil {
		if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
			return fmt.Errorf("process.oomScoreAdj: write %d to %s (lowering needs CAP_SYS_RESOURCE): %w", adj, path, err)
		}
		return fmt.Errorf("process.oomScoreAdj: write %d to %s: %w", adj, path, err)
	}
	return nil
}
