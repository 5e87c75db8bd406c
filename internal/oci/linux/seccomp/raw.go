package seccomp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"unsafe"

	libseccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// libseccomp before 2.6 cannot ask the kernel for
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux 5.19). When a profile asks
// for it on such a build, Load exports the BPF program libseccomp compiled
// and installs it with seccomp(2) itself, with the flags libseccomp would
// have used plus that one.

// kernelFilterFlag reports whether the kernel knows a SECCOMP_SET_MODE_FILTER
// flag: with a NULL program, a known flag set fails on the copy (EFAULT),
// an unknown one on the flag check (EINVAL). Nothing is installed.
func kernelFilterFlag(flag uintptr) bool {
	_, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flag, 0)
	return errno == unix.EFAULT
}

// waitKillableRecvByKernel reports whether WAIT_KILLABLE_RECV can be had
// through loadRaw on this kernel.
func waitKillableRecvByKernel() bool {
	return kernelFilterFlag(unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
}

// loadRaw installs filter's BPF program on all threads with
// TSYNC|NEW_LISTENER|TSYNC_ESRCH|WAIT_KILLABLE_RECV and the extra flags, and
// returns the notification fd.
func loadRaw(filter *libseccomp.ScmpFilter, extra uintptr) (int, error) {
	prog, err := exportBPF(filter)
	if err != nil {
		return -1, err
	}
	flags := extra | unix.SECCOMP_FILTER_FLAG_TSYNC | unix.SECCOMP_FILTER_FLAG_TSYNC_ESRCH |
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, flags, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return -1, fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", flags, errno)
	}
	return int(fd), nil
}

// exportBPF returns the BPF program libseccomp generated for filter.
func exportBPF(filter *libseccomp.ScmpFilter) ([]unix.SockFilter, error) {
	memfd, err := unix.MemfdCreate("seccomp-bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("export seccomp bpf: create memfd: %w", err)
	}
	f := os.NewFile(uintptr(memfd), "seccomp-bpf")
	defer f.Close()
	if err := filter.ExportBPF(f); err != nil {
		return nil, fmt.Errorf("export seccomp bpf: %w", err)
	}
	raw, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("export seccomp bpf: read back: %w", err)
	}
	const insnSize = 8 // struct sock_filter: u16 code, u8 jt, u8 jf, u32 k
	if len(raw) == 0 || len(raw)%insnSize != 0 || len(raw)/insnSize > 0xffff {
		return nil, errors.New("export seccomp bpf: malformed program")
	}
	prog := make([]unix.SockFilter, len(raw)/insnSize)
	for i := range prog {
		b := raw[i*insnSize:]
		prog[i] = unix.SockFilter{
			Code: binary.NativeEndian.Uint16(b[0:]),
			Jt:   b[2],
			Jf:   b[3],
			K:    binary.NativeEndian.Uint32(b[4:]),
		}
	}
	return prog, nil
}
