package seccomp

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func uptr(v uint) *uint { return &v }

func TestValidate(t *testing.T) {
	allow := func(names ...string) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: specs.ActAllow}
	}
	tests := []struct {
		name string
		s    *specs.LinuxSeccomp
		want string // substring of the error; "" means valid
	}{
		{name: "nil", s: nil},
		{name: "minimal", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}},
		{
			name: "full valid profile",
			s: &specs.LinuxSeccomp{
				DefaultAction:    specs.ActErrno,
				DefaultErrnoRet:  uptr(38),
				Architectures:    []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32, specs.ArchSHEB},
				Flags:            []specs.LinuxSeccompFlag{flagTsync, specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
				ListenerPath:     "/run/agent.sock",
				ListenerMetadata: "meta",
				Syscalls: []specs.LinuxSyscall{
					allow("read", "no_such_syscall_in_any_kernel"),
					{Names: []string{"mkdir"}, Action: specs.ActNotify},
					{Names: []string{"kill"}, Action: specs.ActKill},
					{Names: []string{"tkill"}, Action: specs.ActKillThread},
					{Names: []string{"tgkill"}, Action: specs.ActKillProcess},
					{Names: []string{"uname"}, Action: specs.ActTrap},
					{Names: []string{"getcwd"}, Action: specs.ActTrace, ErrnoRet: uptr(7)},
					{Names: []string{"getpid"}, Action: specs.ActLog},
					{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: uptr(0xffff), Args: []specs.LinuxSeccompArg{
						{Index: 0, Value: 8, Op: specs.OpEqualTo},
						{Index: 1, Value: 1, Op: specs.OpNotEqual},
						{Index: 2, Value: 1, Op: specs.OpLessThan},
						{Index: 3, Value: 1, Op: specs.OpLessEqual},
						{Index: 4, Value: 1, Op: specs.OpGreaterThan},
						{Index: 5, Value: 1, Op: specs.OpGreaterEqual},
						{Index: 5, Value: 1, ValueTwo: 1, Op: specs.OpMaskedEqual},
					}},
				},
			},
		},
		{name: "missing default action", s: &specs.LinuxSeccomp{}, want: `linux.seccomp.defaultAction: action is required`},
		{name: "unknown default action", s: &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}, want: `linux.seccomp.defaultAction: unknown action "SCMP_ACT_FOO"`},
		{name: "lower-case action", s: &specs.LinuxSeccomp{DefaultAction: "scmp_act_allow"}, want: `linux.seccomp.defaultAction: unknown action`},
		{name: "notify as default", s: &specs.LinuxSeccomp{DefaultAction: specs.ActNotify, ListenerPath: "/a"}, want: `linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be the default action`},
		{name: "defaultErrnoRet with allow", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, DefaultErrnoRet: uptr(1)}, want: `linux.seccomp.defaultErrnoRet: only allowed with SCMP_ACT_ERRNO or SCMP_ACT_TRACE, not SCMP_ACT_ALLOW`},
		{name: "defaultErrnoRet with trace", s: &specs.LinuxSeccomp{DefaultAction: specs.ActTrace, DefaultErrnoRet: uptr(1)}},
		{name: "defaultErrnoRet too big", s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, DefaultErrnoRet: uptr(0x10000)}, want: `linux.seccomp.defaultErrnoRet: 65536 does not fit in 16 bits`},
		{name: "unknown arch", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX86, "SCMP_ARCH_AMD64"}}, want: `linux.seccomp.architectures[1]: unknown architecture "SCMP_ARCH_AMD64"`},
		{name: "unknown flag", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NEW_LISTENER"}}, want: `linux.seccomp.flags[0]: unknown flag "SECCOMP_FILTER_FLAG_NEW_LISTENER"`},
		{name: "empty names", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{allow("read"), {Action: specs.ActErrno}}}, want: `linux.seccomp.syscalls[1].names: at least one syscall name is required`},
		{name: "empty name", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read", ""}, Action: specs.ActErrno}}}, want: `linux.seccomp.syscalls[0].names[1]: empty syscall name`},
		{
			name: "unknown syscall action",
			s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				allow("a"), allow("b"), allow("c"), {Names: []string{"d"}, Action: "SCMP_ACT_FOO"},
			}},
			want: `linux.seccomp.syscalls[3].action: unknown action "SCMP_ACT_FOO"`,
		},
		{name: "missing syscall action", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}}}}, want: `linux.seccomp.syscalls[0].action: action is required`},
		{name: "errnoRet with allow", s: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow, ErrnoRet: uptr(1)}}}, want: `linux.seccomp.syscalls[0].errnoRet: only allowed with`},
		{name: "errnoRet with notify", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a", Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify, ErrnoRet: uptr(1)}}}, want: `linux.seccomp.syscalls[0].errnoRet: only allowed with`},
		{name: "errnoRet too big", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActTrace, ErrnoRet: uptr(1 << 20)}}}, want: `linux.seccomp.syscalls[0].errnoRet: 1048576 does not fit in 16 bits`},
		{name: "unknown op", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0, Op: specs.OpEqualTo}, {Index: 1, Op: "SCMP_CMP_FOO"}}}}}, want: `linux.seccomp.syscalls[0].args[1].op: unknown operator "SCMP_CMP_FOO"`},
		{name: "missing op", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 0}}}}}, want: `linux.seccomp.syscalls[0].args[0].op: unknown operator ""`},
		{name: "arg index out of range", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}}}}, want: `linux.seccomp.syscalls[0].args[0].index: index 6 out of range`},
		{name: "notify on write", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a", Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write"}, Action: specs.ActNotify}}}, want: `linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY cannot be used for the write syscall`},
		{name: "notify without listener", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}, want: `linux.seccomp.listenerPath: required when a rule uses SCMP_ACT_NOTIFY`},
		{name: "listener without notify", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a", Syscalls: []specs.LinuxSyscall{allow("read")}}, want: `linux.seccomp.listenerPath: set but no rule uses SCMP_ACT_NOTIFY`},
		{name: "relative listener", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "run/a.sock", Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}, want: `linux.seccomp.listenerPath: "run/a.sock" is not an absolute path`},
		{name: "metadata without listener", s: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerMetadata: "m"}, want: `linux.seccomp.listenerMetadata: set without listenerPath`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.s)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate: unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate error = %q, want it to contain %q", err, tt.want)
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("Validate error %q does not wrap errdefs.ErrInvalidArgument", err)
			}
		})
	}
}

func TestLoadRejectsInvalidWithoutLoading(t *testing.T) {
	// Load validates first, so an invalid profile never reaches the kernel
	// (this test would otherwise install a filter on the test process).
	fd, err := Load(&specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || fd != -1 {
		t.Fatalf("Load(invalid) = %d, %v; want -1 and ErrInvalidArgument", fd, err)
	}
	if fd, err := Load(nil); !errors.Is(err, errdefs.ErrInvalidArgument) || fd != -1 {
		t.Fatalf("Load(nil) = %d, %v; want -1 and ErrInvalidArgument", fd, err)
	}
}

func TestSupported(t *testing.T) {
	if !Enabled() {
		t.Skip("kernel without seccomp filter support")
	}
	contains := func(name string, list []string, want ...string) {
		t.Helper()
		for _, w := range want {
			found := false
			for _, l := range list {
				found = found || l == w
			}
			if !found {
				t.Errorf("%s = %v, missing %q", name, list, w)
			}
		}
	}
	// Everything reported must be accepted by Validate.
	for _, a := range SupportedActions() {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, ListenerPath: "/a", Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir"}, Action: specs.LinuxSeccompAction(a)},
			{Names: []string{"mkdirat"}, Action: specs.ActNotify},
		}}
		if err := Validate(s); err != nil {
			t.Errorf("supported action %q rejected: %v", a, err)
		}
	}
	for _, o := range SupportedOperators() {
		s := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
			{Names: []string{"mkdir"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{{Op: specs.LinuxSeccompOperator(o)}}},
		}}
		if err := Validate(s); err != nil {
			t.Errorf("supported operator %q rejected: %v", o, err)
		}
	}
	for _, a := range SupportedArchs() {
		if err := Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.Arch(a)}}); err != nil {
			t.Errorf("supported arch %q rejected: %v", a, err)
		}
	}
	for _, f := range SupportedFlags() {
		if err := Validate(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlag(f)}}); err != nil {
			t.Errorf("supported flag %q rejected: %v", f, err)
		}
	}
	contains("SupportedActions", SupportedActions(), "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_TRAP", "SCMP_ACT_TRACE")
	if len(SupportedOperators()) != 7 {
		t.Errorf("SupportedOperators = %v, want the 7 SCMP_CMP_* operators", SupportedOperators())
	}
	contains("SupportedArchs", SupportedArchs(), "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_AARCH64")
	contains("SupportedFlags", SupportedFlags(), "SECCOMP_FILTER_FLAG_TSYNC")
	// A copy each call: callers may not corrupt the cache.
	a := SupportedArchs()
	a[0] = "x"
	if SupportedArchs()[0] == "x" {
		t.Error("SupportedArchs returns its cache, not a copy")
	}
}
