package seccomp

import (
	"errors"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// TestBuild checks the filter attributes Load relies on, without loading.
func TestBuild(t *testing.T) {
	s := &specs.LinuxSeccomp{
		DefaultAction:   specs.ActErrno,
		DefaultErrnoRet: uptr(uint(unix.ENOSYS)),
		Architectures:   []specs.Arch{specs.ArchX86, specs.ArchX32, specs.ArchAARCH64},
		Syscalls:        []specs.LinuxSyscall{{Names: []string{"read"}, Action: specs.ActAllow}},
	}
	for _, f := range []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow} {
		if slices.Contains(SupportedFlags(), string(f)) {
			s.Flags = append(s.Flags, f)
		}
	}
	b, err := build(s)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	defer b.filter.Release()
	if b.notify || b.raw {
		t.Errorf("notify=%v raw=%v, want both false", b.notify, b.raw)
	}
	for _, a := range []libseccomp.ScmpArch{libseccomp.ArchX86, libseccomp.ArchX32, libseccomp.ArchARM64, libseccomp.ArchNative} {
		if ok, err := b.filter.IsArchPresent(a); err != nil || !ok {
			t.Errorf("architecture %v present = %v, %v; want true", a, ok, err)
		}
	}
	if ok, _ := b.filter.IsArchPresent(libseccomp.ArchS390X); ok {
		t.Error("s390x present though not asked for")
	}
	if nnp, err := b.filter.GetNoNewPrivsBit(); err != nil || nnp {
		t.Errorf("no_new_privs attribute = %v, %v; want false", nnp, err)
	}
	if def, err := b.filter.GetDefaultAction(); err != nil || def != libseccomp.ActErrno.SetReturnCode(int16(unix.ENOSYS)) {
		t.Errorf("default action = %v, %v; want errno ENOSYS", def, err)
	}
	if slices.Contains(s.Flags, specs.LinuxSeccompFlagLog) {
		if on, err := b.filter.GetLogBit(); err != nil || !on {
			t.Errorf("log attribute = %v, %v; want true", on, err)
		}
	}
	if slices.Contains(s.Flags, specs.LinuxSeccompFlagSpecAllow) {
		if on, err := b.filter.GetSSB(); err != nil || !on {
			t.Errorf("SSB attribute = %v, %v; want true", on, err)
		}
	}
}

func TestBuildDefaults(t *testing.T) {
	for _, tt := range []struct {
		name string
		act  specs.LinuxSeccompAction
		want libseccomp.ScmpAction
	}{
		{"errno defaults to EPERM", specs.ActErrno, libseccomp.ActErrno.SetReturnCode(int16(unix.EPERM))},
		{"trace defaults to EPERM", specs.ActTrace, libseccomp.ActTrace.SetReturnCode(int16(unix.EPERM))},
		{"kill is kill thread", specs.ActKill, libseccomp.ActKillThread},
		{"kill process", specs.ActKillProcess, libseccomp.ActKillProcess},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b, err := build(&specs.LinuxSeccomp{DefaultAction: tt.act})
			if err != nil {
				t.Fatalf("build: %v", err)
			}
			defer b.filter.Release()
			if got, err := b.filter.GetDefaultAction(); err != nil || got != tt.want {
				t.Errorf("default action = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestBuildUnsupportedArch(t *testing.T) {
	for _, a := range archOrder {
		if slices.Contains(SupportedArchs(), string(a.name)) {
			continue
		}
		_, err := build(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{a.name}})
		if !errors.Is(err, errdefs.ErrNotImplemented) {
			t.Errorf("unsupported %s: err = %v, want ErrNotImplemented", a.name, err)
		}
		return
	}
	t.Skip("this libseccomp supports every runtime-spec architecture")
}
