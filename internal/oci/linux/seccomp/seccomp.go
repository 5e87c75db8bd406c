package seccomp

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// flagTsync is listed by runtime-spec but has no constant in specs-go.
// Load always synchronises the filter to every thread, so it is a no-op.
const flagTsync specs.LinuxSeccompFlag = "SECCOMP_FILTER_FLAG_TSYNC"

// maxArgs is the number of syscall arguments a condition can test.
const maxArgs = 6

// maxRetData is the largest value that fits SECCOMP_RET_DATA, the 16 bits
// carrying the errno of SCMP_ACT_ERRNO or the message of SCMP_ACT_TRACE.
const maxRetData = 0xffff

// actions maps the runtime-spec action names to libseccomp actions.
// minAPI is the libseccomp API level the action needs.
var actions = map[specs.LinuxSeccompAction]struct {
	act    libseccomp.ScmpAction
	minAPI uint
}{
	specs.ActKill:        {libseccomp.ActKillThread, 1},
	specs.ActKillThread:  {libseccomp.ActKillThread, 1},
	specs.ActKillProcess: {libseccomp.ActKillProcess, 3},
	specs.ActTrap:        {libseccomp.ActTrap, 1},
	specs.ActErrno:       {libseccomp.ActErrno, 1},
	specs.ActTrace:       {libseccomp.ActTrace, 1},
	specs.ActAllow:       {libseccomp.ActAllow, 1},
	specs.ActLog:         {libseccomp.ActLog, 3},
	specs.ActNotify:      {libseccomp.ActNotify, 6},
}

// actionOrder fixes the order SupportedActions reports.
var actionOrder = []specs.LinuxSeccompAction{
	specs.ActAllow, specs.ActErrno, specs.ActKill, specs.ActKillProcess,
	specs.ActKillThread, specs.ActLog, specs.ActNotify, specs.ActTrace, specs.ActTrap,
}

var operators = map[specs.LinuxSeccompOperator]libseccomp.ScmpCompareOp{
	specs.OpEqualTo:      libseccomp.CompareEqual,
	specs.OpGreaterEqual: libseccomp.CompareGreaterEqual,
	specs.OpGreaterThan:  libseccomp.CompareGreater,
	specs.OpLessEqual:    libseccomp.CompareLessOrEqual,
	specs.OpLessThan:     libseccomp.CompareLess,
	specs.OpMaskedEqual:  libseccomp.CompareMaskedEqual,
	specs.OpNotEqual:     libseccomp.CompareNotEqual,
}

var operatorOrder = []specs.LinuxSeccompOperator{
	specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpLessEqual,
	specs.OpLessThan, specs.OpMaskedEqual, specs.OpNotEqual,
}

// archOrder lists the runtime-spec architecture names with their
// libseccomp tokens, in the order of config-linux.md.
var archOrder = []struct {
	name specs.Arch
	arch libseccomp.ScmpArch
}{
	{specs.ArchX86, libseccomp.ArchX86},
	{specs.ArchX86_64, libseccomp.ArchAMD64},
	{specs.ArchX32, libseccomp.ArchX32},
	{specs.ArchARM, libseccomp.ArchARM},
	{specs.ArchAARCH64, libseccomp.ArchARM64},
	{specs.ArchMIPS, libseccomp.ArchMIPS},
	{specs.ArchMIPS64, libseccomp.ArchMIPS64},
	{specs.ArchMIPS64N32, libseccomp.ArchMIPS64N32},
	{specs.ArchMIPSEL, libseccomp.ArchMIPSEL},
	{specs.ArchMIPSEL64, libseccomp.ArchMIPSEL64},
	{specs.ArchMIPSEL64N32, libseccomp.ArchMIPSEL64N32},
	{specs.ArchPPC, libseccomp.ArchPPC},
	{specs.ArchPPC64, libseccomp.ArchPPC64},
	{specs.ArchPPC64LE, libseccomp.ArchPPC64LE},
	{specs.ArchS390, libseccomp.ArchS390},
	{specs.ArchS390X, libseccomp.ArchS390X},
	{specs.ArchPARISC, libseccomp.ArchPARISC},
	{specs.ArchPARISC64, libseccomp.ArchPARISC64},
	{specs.ArchRISCV64, libseccomp.ArchRISCV64},
	{specs.ArchLOONGARCH64, libseccomp.ArchLOONGARCH64},
	{specs.ArchM68K, libseccomp.ArchM68K},
	{specs.ArchSH, libseccomp.ArchSH},
	{specs.ArchSHEB, libseccomp.ArchSHEB},
}

func lookupArch(name specs.Arch) (libseccomp.ScmpArch, bool) {
	for _, a := range archOrder {
		if a.name == name {
			return a.arch, true
		}
	}
	return libseccomp.ArchInvalid, false
}

// flags lists the runtime-spec filter flags with the filter attribute each
// one sets; TSYNC has none (Load always uses it).
var flags = []struct {
	name specs.LinuxSeccompFlag
	set  func(*libseccomp.ScmpFilter) error
}{
	{flagTsync, nil},
	{specs.LinuxSeccompFlagLog, func(f *libseccomp.ScmpFilter) error { return f.SetLogBit(true) }},
	{specs.LinuxSeccompFlagSpecAllow, func(f *libseccomp.ScmpFilter) error { return f.SetSSB(true) }},
	{specs.LinuxSeccompFlagWaitKillableRecv, func(f *libseccomp.ScmpFilter) error { return f.SetWaitKill(true) }},
}

func lookupFlag(name specs.LinuxSeccompFlag) (func(*libseccomp.ScmpFilter) error, bool) {
	for _, f := range flags {
		if f.name == name {
			return f.set, true
		}
	}
	return nil, false
}

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%s: %s: %w", field, fmt.Sprintf(format, args...), errdefs.ErrInvalidArgument)
}

// Validate checks s without loading anything: defaultAction and every
// syscalls[].action is a known SCMP_ACT_* name, architectures are known
// SCMP_ARCH_* names, args[].op is a known SCMP_CMP_* operator and
// args[].index is below 6, flags are known SECCOMP_FILTER_FLAG_* names,
// defaultErrnoRet and errnoRet go only with SCMP_ACT_ERRNO or
// SCMP_ACT_TRACE and fit in 16 bits, listenerPath is set (and absolute) if
// and only if some rule uses SCMP_ACT_NOTIFY, listenerMetadata only with
// listenerPath, and every syscalls[] entry names at least one syscall.
// SCMP_ACT_NOTIFY is refused as the default action and for "write": the
// runtime itself needs those syscalls after the filter is loaded to hand the
// notification fd over, and would wait on its own agent forever.
//
// Unknown syscall names are not errors: a profile may name syscalls newer
// than libseccomp, and Load skips them. Errors wrap errdefs.ErrInvalidArgument
// and name the field at fault. A nil s is valid (no filter).
func Validate(s *specs.LinuxSeccomp) error {
	if s == nil {
		return nil
	}
	const root = "linux.seccomp"
	if err := validateAction(root+".defaultAction", s.DefaultAction); err != nil {
		return err
	}
	if s.DefaultAction == specs.ActNotify {
		return invalid(root+".defaultAction", "%s cannot be the default action", specs.ActNotify)
	}
	if err := validateErrnoRet(root+".defaultErrnoRet", s.DefaultAction, s.DefaultErrnoRet); err != nil {
		return err
	}
	for i, a := range s.Architectures {
		if _, ok := lookupArch(a); !ok {
			return invalid(fmt.Sprintf("%s.architectures[%d]", root, i), "unknown architecture %q", a)
		}
	}
	for i, f := range s.Flags {
		if _, ok := lookupFlag(f); !ok {
			return invalid(fmt.Sprintf("%s.flags[%d]", root, i), "unknown flag %q", f)
		}
	}
	notify := false
	for i, sc := range s.Syscalls {
		field := fmt.Sprintf("%s.syscalls[%d]", root, i)
		if len(sc.Names) == 0 {
			return invalid(field+".names", "at least one syscall name is required")
		}
		for j, n := range sc.Names {
			if n == "" {
				return invalid(fmt.Sprintf("%s.names[%d]", field, j), "empty syscall name")
			}
		}
		if err := validateAction(field+".action", sc.Action); err != nil {
			return err
		}
		if sc.Action == specs.ActNotify {
			notify = true
			if slices.Contains(sc.Names, "write") {
				return invalid(field+".action", "%s cannot be used for the write syscall", specs.ActNotify)
			}
		}
		if err := validateErrnoRet(field+".errnoRet", sc.Action, sc.ErrnoRet); err != nil {
			return err
		}
		for j, a := range sc.Args {
			afield := fmt.Sprintf("%s.args[%d]", field, j)
			if a.Index >= maxArgs {
				return invalid(afield+".index", "index %d out of range (syscalls have %d arguments)", a.Index, maxArgs)
			}
			if _, ok := operators[a.Op]; !ok {
				return invalid(afield+".op", "unknown operator %q", a.Op)
			}
		}
	}
	switch {
	case notify && s.ListenerPath == "":
		return invalid(root+".listenerPath", "required when a rule uses %s", specs.ActNotify)
	case !notify && s.ListenerPath != "":
		return invalid(root+".listenerPath", "set but no rule uses %s", specs.ActNotify)
	case s.ListenerPath != "" && !filepath.IsAbs(s.ListenerPath):
		return invalid(root+".listenerPath", "%q is not an absolute path", s.ListenerPath)
	case s.ListenerMetadata != "" && s.ListenerPath == "":
		return invalid(root+".listenerMetadata", "set without listenerPath")
	}
	return nil
}

func validateAction(field string, a specs.LinuxSeccompAction) error {
	if a == "" {
		return invalid(field, "action is required")
	}
	if _, ok := actions[a]; !ok {
		return invalid(field, "unknown action %q", a)
	}
	return nil
}

func validateErrnoRet(field string, a specs.LinuxSeccompAction, ret *uint) error {
	if ret == nil {
		return nil
	}
	if a != specs.ActErrno && a != specs.ActTrace {
		return invalid(field, "only allowed with %s or %s, not %s", specs.ActErrno, specs.ActTrace, a)
	}
	if *ret > maxRetData {
		return invalid(field, "%d does not fit in 16 bits", *ret)
	}
	return nil
}

// action converts a validated action name and its optional return value.
// ERRNO and TRACE default to EPERM, as runtime-spec says.
func action(a specs.LinuxSeccompAction, ret *uint) libseccomp.ScmpAction {
	act := actions[a].act
	if act == libseccomp.ActErrno || act == libseccomp.ActTrace {
		code := uint(unix.EPERM)
		if ret != nil {
			code = *ret
		}
		act = act.SetReturnCode(int16(uint16(code)))
	}
	return act
}

// Load validates s, builds the filter and loads it into the calling process
// on all of its threads (TSYNC). It honours defaultErrnoRet, errnoRet, the
// argument conditions (conditions on different arguments of one entry are
// ANDed in one rule; when several conditions test the same argument, each
// becomes a rule of its own, as runc does), the flags and the extra
// architectures. Syscall names libseccomp does not know are skipped, and so
// are rules whose action equals the default action.
//
// Load does not set no_new_privs: the filter is loaded with libseccomp's NNP
// attribute off, so if no_new_privs is not already set the caller must hold
// CAP_SYS_ADMIN. Both are per thread: the caller should lock its goroutine
// to the OS thread across prctl(PR_SET_NO_NEW_PRIVS) and Load. When a rule
// uses SCMP_ACT_NOTIFY, Load returns the notification fd (close-on-exec),
// otherwise -1. SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV matters only with a
// notification rule and is dropped without one; when libseccomp is too old
// to ask for it, Load installs libseccomp's program with seccomp(2) itself.
// Profiles this build cannot honour (an action, flag or architecture that
// libseccomp or the kernel lacks) fail with errdefs.ErrNotImplemented.
func Load(s *specs.LinuxSeccomp) (notifyFd int, err error) {
	b, err := build(s)
	if err != nil {
		return -1, err
	}
	defer b.filter.Release()
	if b.raw {
		fd, err := loadRaw(b.filter, b.rawFlags)
		if err != nil {
			return -1, fmt.Errorf("load seccomp filter: %w", err)
		}
		return fd, nil
	}
	if err := b.filter.Load(); err != nil {
		return -1, fmt.Errorf("load seccomp filter: %w", err)
	}
	if !b.notify {
		return -1, nil
	}
	fd, err := b.filter.GetNotifFd()
	if err != nil {
		return -1, fmt.Errorf("get seccomp notification fd: %w", err)
	}
	return int(fd), nil
}

// built is a filter ready to load and how to load it.
type built struct {
	filter   *libseccomp.ScmpFilter
	notify   bool    // some rule uses SCMP_ACT_NOTIFY
	raw      bool    // load with loadRaw (WAIT_KILLABLE_RECV on old libseccomp)
	rawFlags uintptr // LOG and SPEC_ALLOW for loadRaw
	// waitKillable: the profile asks for WAIT_KILLABLE_RECV with a listener
	waitKillable bool
}

// build validates s and builds its filter without loading it. The caller
// releases the filter.
func build(s *specs.LinuxSeccomp) (b built, err error) {
	if s == nil {
		return b, fmt.Errorf("linux.seccomp: no profile to load: %w", errdefs.ErrInvalidArgument)
	}
	if err := Validate(s); err != nil {
		return b, err
	}
	api, _ := libseccomp.GetAPI() // 0 on libseccomp < 2.4, which then supports nothing newer.

	const root = "linux.seccomp"
	if err := checkActionAPI(root+".defaultAction", s.DefaultAction, api); err != nil {
		return b, err
	}
	notify := false
	for i, sc := range s.Syscalls {
		if err := checkActionAPI(fmt.Sprintf("%s.syscalls[%d].action", root, i), sc.Action, api); err != nil {
			return b, err
		}
		notify = notify || sc.Action == specs.ActNotify
	}

	defAct := action(s.DefaultAction, s.DefaultErrnoRet)
	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return b, fmt.Errorf("create seccomp filter: %w", err)
	}
	defer func() {
		if err != nil {
			filter.Release()
		}
	}()

	// libseccomp sets no_new_privs on load unless told not to; the caller
	// owns that decision (process.noNewPrivileges).
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return b, fmt.Errorf("clear seccomp no_new_privs attribute: %w", err)
	}
	for i, a := range s.Architectures {
		arch, _ := lookupArch(a)
		if err := filter.AddArch(arch); err != nil {
			return b, fmt.Errorf("%s.architectures[%d]: add %s: %w: %w", root, i, a, err, errdefs.ErrNotImplemented)
		}
	}
	// raw: load through seccomp(2) ourselves (see raw.go), with rawFlags.
	raw, rawFlags, waitKillable := false, uintptr(0), false
	for i, f := range s.Flags {
		set, _ := lookupFlag(f)
		switch f {
		case flagTsync:
			continue // always on
		case specs.LinuxSeccompFlagLog:
			rawFlags |= unix.SECCOMP_FILTER_FLAG_LOG
		case specs.LinuxSeccompFlagSpecAllow:
			rawFlags |= unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
		case specs.LinuxSeccompFlagWaitKillableRecv:
			if !notify {
				// The kernel accepts this flag only with a notification
				// listener; without SCMP_ACT_NOTIFY it changes nothing.
				continue
			}
			waitKillable = true
			err := set(filter)
			var verr *libseccomp.VersionError
			if errors.As(err, &verr) && waitKillableRecvByKernel() {
				raw = true
				continue
			}
			if err != nil {
				return b, fmt.Errorf("%s.flags[%d]: set %s: %w: %w", root, i, f, err, errdefs.ErrNotImplemented)
			}
			continue
		}
		if err := set(filter); err != nil {
			return b, fmt.Errorf("%s.flags[%d]: set %s: %w: %w", root, i, f, err, errdefs.ErrNotImplemented)
		}
	}

	rules := 0
	for i, sc := range s.Syscalls {
		n, err := addRules(filter, sc, defAct)
		if err != nil {
			return b, fmt.Errorf("%s.syscalls[%d]: %w", root, i, err)
		}
		rules += n
	}
	if rules > 32 {
		// A binary tree keeps long profiles at O(log n) per syscall. Older
		// libseccomp lacks it (and mishandles it on an empty filter, which
		// the count above rules out); the linear filter is still correct.
		_ = filter.SetOptimize(2)
	}

	return built{filter: filter, notify: notify, raw: raw, rawFlags: rawFlags, waitKillable: waitKillable}, nil
}

func checkActionAPI(field string, a specs.LinuxSeccompAction, api uint) error {
	if need := actions[a].minAPI; api < need {
		return fmt.Errorf("%s: %s needs libseccomp API level %d, have %d: %w", field, a, need, api, errdefs.ErrNotImplemented)
	}
	return nil
}

// addRules adds the rules of one syscalls[] entry and returns how many it
// added.
func addRules(filter *libseccomp.ScmpFilter, sc specs.LinuxSyscall, defAct libseccomp.ScmpAction) (int, error) {
	act := action(sc.Action, sc.ErrnoRet)
	if act == defAct {
		// libseccomp refuses a rule that repeats the default action, and
		// the rule would change nothing.
		return 0, nil
	}
	conds := make([]libseccomp.ScmpCondition, 0, len(sc.Args))
	var perIndex [maxArgs]int
	sameIndex := false
	for j, a := range sc.Args {
		c, err := libseccomp.MakeCondition(a.Index, operators[a.Op], a.Value, a.ValueTwo)
		if err != nil {
			return 0, fmt.Errorf("args[%d]: %w: %w", j, err, errdefs.ErrInvalidArgument)
		}
		conds = append(conds, c)
		perIndex[a.Index]++
		sameIndex = sameIndex || perIndex[a.Index] > 1
	}
	// Conditions on one argument cannot be ANDed by libseccomp (and would
	// rarely mean anything ANDed), so each gets a rule of its own.
	var groups [][]libseccomp.ScmpCondition
	switch {
	case len(conds) == 0:
		groups = [][]libseccomp.ScmpCondition{nil}
	case sameIndex:
		for _, c := range conds {
			groups = append(groups, []libseccomp.ScmpCondition{c})
		}
	default:
		groups = [][]libseccomp.ScmpCondition{conds}
	}

	added := 0
	for _, name := range sc.Names {
		nr, err := libseccomp.GetSyscallFromName(name)
		if err != nil {
			// Newer than this libseccomp (or not on this architecture):
			// the profile may name syscalls we cannot filter.
			continue
		}
		for _, g := range groups {
			if len(g) == 0 {
				err = filter.AddRule(nr, act)
			} else {
				err = filter.AddRuleConditional(nr, act, g)
			}
			if err != nil {
				if nr < 0 {
					// a syscall of another architecture (e.g. getegid32
					// on x86_64) that none of the filter's architectures
					// has: nothing to filter
					break
				}
				return added, fmt.Errorf("add rule for syscall %q: %w", name, err)
			}
			added++
		}
	}
	return added, nil
}

// SupportedActions lists the SCMP_ACT_* names this build (libseccomp API
// level) supports, for the features document.
func SupportedActions() []string {
	api, _ := libseccomp.GetAPI()
	var out []string
	for _, a := range actionOrder {
		if api >= actions[a].minAPI {
			out = append(out, string(a))
		}
	}
	return out
}

// SupportedOperators lists the SCMP_CMP_* names, for the features document.
func SupportedOperators() []string {
	out := make([]string, 0, len(operatorOrder))
	for _, o := range operatorOrder {
		out = append(out, string(o))
	}
	return out
}

// SupportedArchs lists the SCMP_ARCH_* names the linked libseccomp can add
// to a filter, for the features document.
func SupportedArchs() []string { return slices.Clone(probe().archs) }

// SupportedFlags lists the SECCOMP_FILTER_FLAG_* names that libseccomp and
// the kernel accept, for the features document.
func SupportedFlags() []string { return slices.Clone(probe().flags) }

type probed struct {
	archs []string
	flags []string
}

// probe asks libseccomp, once, which architectures and flags it accepts on
// a scratch filter that is never loaded.
var probe = sync.OnceValue(func() probed {
	var p probed
	for _, a := range archOrder {
		f, err := libseccomp.NewFilter(libseccomp.ActAllow)
		if err != nil {
			return p
		}
		if f.AddArch(a.arch) == nil {
			p.archs = append(p.archs, string(a.name))
		}
		f.Release()
	}
	for _, fl := range flags {
		if fl.set == nil {
			p.flags = append(p.flags, string(fl.name))
			continue
		}
		f, err := libseccomp.NewFilter(libseccomp.ActAllow)
		if err != nil {
			return p
		}
		ok := fl.set(f) == nil
		if !ok && fl.name == specs.LinuxSeccompFlagWaitKillableRecv {
			api, _ := libseccomp.GetAPI()
			ok = api >= actions[specs.ActNotify].minAPI && waitKillableRecvByKernel()
		}
		if ok {
			p.flags = append(p.flags, string(fl.name))
		}
		f.Release()
	}
	return p
})

// Enabled reports whether the kernel supports seccomp filters
// (SECCOMP_MODE_FILTER). It probes with a NULL filter, which a kernel with
// filter support rejects with EFAULT and one without it with EINVAL.
func Enabled() bool {
	if err := unix.Prctl(unix.PR_GET_SECCOMP, 0, 0, 0, 0); errors.Is(err, unix.EINVAL) {
		return false
	}
	err := unix.Prctl(unix.PR_SET_SECCOMP, unix.SECCOMP_MODE_FILTER, 0, 0, 0)
	return errors.Is(err, unix.EFAULT)
}

// Program is a compiled filter, ready to install without allocating: the
// container init compiles it early (libseccomp allocates, which a small
// RLIMIT_AS or a filter that is already loaded could break) and installs
// it as the last step before execve.
type Program struct {
	prog  []unix.SockFilter
	flags uintptr
}

// Prepare validates s and compiles it to a BPF program.
func Prepare(s *specs.LinuxSeccomp) (*Program, error) {
	b, err := build(s)
	if err != nil {
		return nil, err
	}
	defer b.filter.Release()
	prog, err := exportBPF(b.filter)
	if err != nil {
		return nil, err
	}
	flags := b.rawFlags | unix.SECCOMP_FILTER_FLAG_TSYNC
	if b.notify {
		flags |= unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH
		if b.waitKillable {
			flags |= unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
		}
	}
	return &Program{prog: prog, flags: flags}, nil
}

// Install loads the program on every thread of the calling process with
// seccomp(2) and returns the notification fd, or -1 when the profile has no
// SCMP_ACT_NOTIFY rule. Without no_new_privs the caller needs CAP_SYS_ADMIN.
func (p *Program) Install() (int, error) {
	fprog := unix.SockFprog{Len: uint16(len(p.prog)), Filter: &p.prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, p.flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(p.prog)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", p.flags, errno)
	}
	if p.flags&unix.SECCOMP_FILTER_FLAG_NEW_LISTENER == 0 {
		return -1, nil
	}
	return int(fd), nil
}

// MarshalBinary encodes the program: the filter flags (8 bytes, little
// endian), then the BPF instructions (8 bytes each).
func (p *Program) MarshalBinary() ([]byte, error) {
	out := make([]byte, 8+8*len(p.prog))
	binary.LittleEndian.PutUint64(out, uint64(p.flags))
	for i, in := range p.prog {
		b := out[8+8*i:]
		binary.LittleEndian.PutUint16(b, in.Code)
		b[2], b[3] = in.Jt, in.Jf
		binary.LittleEndian.PutUint32(b[4:], in.K)
	}
	return out, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (p *Program) UnmarshalBinary(data []byte) error {
	if len(data) < 16 || (len(data)-8)%8 != 0 || (len(data)-8)/8 > 0xffff {
		return fmt.Errorf("seccomp program: %d bytes is not a program", len(data))
	}
	p.flags = uintptr(binary.LittleEndian.Uint64(data))
	p.prog = make([]unix.SockFilter, (len(data)-8)/8)
	for i := range p.prog {
		b := data[8+8*i:]
		p.prog[i] = unix.SockFilter{Code: binary.LittleEndian.Uint16(b), Jt: b[2], Jf: b[3], K: binary.LittleEndian.Uint32(b[4:])}
	}
	return nil
}

// CacheKey names the compiled form of s for this build of libseccomp and
// this kernel's flags: the same key means the same program.
func CacheKey(s *specs.LinuxSeccomp) (string, error) {
	data, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	major, minor, micro := libseccomp.GetLibraryVersion()
	h := sha256.New()
	fmt.Fprintf(h, "gantry-seccomp-v1 libseccomp %d.%d.%d\n", major, minor, micro)
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil)), nil
}
