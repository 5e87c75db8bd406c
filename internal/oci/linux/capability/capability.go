package capability

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// table holds every capability Linux defines up to CAP_CHECKPOINT_RESTORE.
var table = map[string]int{
	"CAP_CHOWN":              0,
	"CAP_DAC_OVERRIDE":       1,
	"CAP_DAC_READ_SEARCH":    2,
	"CAP_FOWNER":             3,
	"CAP_FSETID":             4,
	"CAP_KILL":               5,
	"CAP_SETGID":             6,
	"CAP_SETUID":             7,
	"CAP_SETPCAP":            8,
	"CAP_LINUX_IMMUTABLE":    9,
	"CAP_NET_BIND_SERVICE":   10,
	"CAP_NET_BROADCAST":      11,
	"CAP_NET_ADMIN":          12,
	"CAP_NET_RAW":            13,
	"CAP_IPC_LOCK":           14,
	"CAP_IPC_OWNER":          15,
	"CAP_SYS_MODULE":         16,
	"CAP_SYS_RAWIO":          17,
	"CAP_SYS_CHROOT":         18,
	"CAP_SYS_PTRACE":         19,
	"CAP_SYS_PACCT":          20,
	"CAP_SYS_ADMIN":          21,
	"CAP_SYS_BOOT":           22,
	"CAP_SYS_NICE":           23,
	"CAP_SYS_RESOURCE":       24,
	"CAP_SYS_TIME":           25,
	"CAP_SYS_TTY_CONFIG":     26,
	"CAP_MKNOD":              27,
	"CAP_LEASE":              28,
	"CAP_AUDIT_WRITE":        29,
	"CAP_AUDIT_CONTROL":      30,
	"CAP_SETFCAP":            31,
	"CAP_MAC_OVERRIDE":       32,
	"CAP_MAC_ADMIN":          33,
	"CAP_SYSLOG":             34,
	"CAP_WAKE_ALARM":         35,
	"CAP_BLOCK_SUSPEND":      36,
	"CAP_AUDIT_READ":         37,
	"CAP_PERFMON":            38,
	"CAP_BPF":                39,
	"CAP_CHECKPOINT_RESTORE": 40,
}

// maxKnown is the highest capability number in table.
const maxKnown = 40

// Parse maps a capability name such as "CAP_SYS_ADMIN" to its number. An
// unknown name is an error of kind errdefs.ErrInvalidArgument.
func Parse(name string) (int, error) {
	n, ok := table[name]
	if !ok {
		return 0, fmt.Errorf("unknown capability %q: %w", name, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// Known lists every capability name Parse accepts, in numeric order.
func Known() []string {
	names := make([]string, 0, len(table))
	for name := range table {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return table[names[i]] < table[names[j]] })
	return names
}

var lastCap = sync.OnceValues(func() (int, error) {
	const path = "/proc/sys/kernel/cap_last_cap"
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("parse %s: %w", path, err)
	}
	return n, nil
})

// Last returns the highest capability number the running kernel knows, from
// /proc/sys/kernel/cap_last_cap.
func Last() (int, error) { return lastCap() }

// set is a capability bit mask over the two 32-bit words of capset v3.
type set [2]uint32

func (s *set) add(c int)     { s[c/32] |= 1 << (uint(c) % 32) }
func (s set) has(c int) bool { return s[c/32]&(1<<(uint(c)%32)) != 0 }
func (s set) and(o set) set  { return set{s[0] & o[0], s[1] & o[1]} }

// build turns names into a set, ignoring capabilities above last (which the
// kernel does not know) and rejecting names that are not capabilities.
func build(field string, names []string, last int) (set, error) {
	var s set
	for i, name := range names {
		n, err := Parse(name)
		if err != nil {
			return s, fmt.Errorf("process.capabilities.%s[%d]: %w", field, i, err)
		}
		if n > last {
			continue
		}
		s.add(n)
	}
	return s, nil
}

func capget() (eff, prm, inh set, err error) {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return eff, prm, inh, fmt.Errorf("capget: %w", err)
	}
	for i := range data {
		eff[i], prm[i], inh[i] = data[i].Effective, data[i].Permitted, data[i].Inheritable
	}
	return eff, prm, inh, nil
}

func capset(eff, prm, inh set) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	for i := range data {
		data[i] = unix.CapUserData{Effective: eff[i], Permitted: prm[i], Inheritable: inh[i]}
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	return nil
}

// Sets are the capability sets Apply gives a process, as bit masks over
// capability numbers up to Last.
type Sets struct {
	Last                                                 int // the kernel's last capability, at most 63
	Bounding, Effective, Permitted, Inheritable, Ambient uint64
}

// Build checks c and converts it as Apply does, without changing anything:
// names are resolved (an unknown one is an error), capabilities newer than
// the running kernel are left out, and the effective set must lie within
// the permitted one. A nil c is all sets empty.
func Build(c *specs.LinuxCapabilities) (Sets, error) {
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	last, err := Last()
	if err != nil {
		return Sets{}, err
	}
	// Bits we have no name for can never be granted by a config, but they
	// must still be dropped from the bounding set; set holds 64 bits.
	last = min(last, 63)
	var s [5]set
	for i, f := range []struct {
		field string
		names []string
	}{{"bounding", c.Bounding}, {"effective", c.Effective}, {"permitted", c.Permitted}, {"inheritable", c.Inheritable}, {"ambient", c.Ambient}} {
		if s[i], err = build(f.field, f.names, last); err != nil {
			return Sets{}, err
		}
	}
	eff, prm := s[1], s[2]
	// The kernel refuses an effective capability that is not permitted;
	// report that as a config error rather than a bare EPERM.
	if extra := eff.and(set{^prm[0], ^prm[1]}); extra != (set{}) {
		return Sets{}, fmt.Errorf("process.capabilities.effective: %s not in the permitted set: %w", names(extra), errdefs.ErrInvalidArgument)
	}
	return Sets{Last: last, Bounding: s[0].mask(), Effective: s[1].mask(), Permitted: s[2].mask(), Inheritable: s[3].mask(), Ambient: s[4].mask()}, nil
}

func (s set) mask() uint64 { return uint64(s[0]) | uint64(s[1])<<32 }

func fromMask(m uint64) set { return set{uint32(m), uint32(m >> 32)} }

// Apply sets the capability sets of the calling thread to c: it drops from
// the bounding set every capability not in c.Bounding, sets the effective,
// permitted and inheritable sets exactly, clears the ambient set and raises
// c.Ambient. A nil c drops everything. Capabilities newer than the running
// kernel are ignored. It must run on the thread that will execve, after any
// uid change (see package identity), as the last privileged step. (The
// exec fast path of gantry-oci does the same in C: nsexec/execproc.c.)
func Apply(c *specs.LinuxCapabilities) error {
	s, err := Build(c)
	if err != nil {
		return err
	}
	last := s.Last
	bnd, eff, prm, inh, amb := fromMask(s.Bounding), fromMask(s.Effective), fromMask(s.Permitted), fromMask(s.Inheritable), fromMask(s.Ambient)

	// After a switch to a non-root uid with PR_SET_KEEPCAPS the effective set
	// is empty; raise it to the permitted set so that CAP_SETPCAP (needed to
	// drop from the bounding set) is in force.
	_, curPrm, curInh, err := capget()
	if err != nil {
		return err
	}
	if err := capset(curPrm, curPrm, curInh); err != nil {
		return err
	}

	for n := 0; n <= last; n++ {
		if bnd.has(n) {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
			if errors.Is(err, unix.EINVAL) && n > maxKnown {
				break // not a capability on this kernel after all
			}
			return fmt.Errorf("drop %s from the bounding set: %w", name(n), err)
		}
	}

	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clear the ambient capability set: %w", err)
	}
	if err := capset(eff, prm, inh); err != nil {
		return fmt.Errorf("set capabilities (effective %s, permitted %s, inheritable %s): %w", names(eff), names(prm), names(inh), err)
	}
	for n := 0; n <= last; n++ {
		if !amb.has(n) {
			continue
		}
		if !prm.and(inh).has(n) {
			// The kernel only lets a capability into the ambient set when it
			// is both permitted and inheritable; runc ignores the rest too.
			continue
		}
		if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), 0, 0); err != nil {
			return fmt.Errorf("raise ambient capability %s: %w", name(n), err)
		}
	}
	return nil
}

func name(n int) string {
	for k, v := range table {
		if v == n {
			return k
		}
	}
	return "capability " + strconv.Itoa(n)
}

func names(s set) string {
	var out []string
	for n := 0; n < 64; n++ {
		if s.has(n) {
			out = append(out, name(n))
		}
	}
	if len(out) == 0 {
		return "[]"
	}
	return "[" + strings.Join(out, " ") + "]"
}
