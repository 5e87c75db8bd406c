package cgroup

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// insn is one eBPF instruction (struct bpf_insn).
type insn struct {
	code uint8
	dst  uint8 // register, low nibble of the second byte
	src  uint8 // register, high nibble
	off  int16
	imm  int32
}

// The opcodes the device program uses (linux/bpf_common.h, linux/bpf.h).
const (
	opLdxW    = 0x61 // BPF_LDX|BPF_MEM|BPF_W: dst = *(u32 *)(src + off)
	opAndK    = 0x57 // BPF_ALU64|BPF_AND|BPF_K: dst &= imm
	opRshK    = 0x77 // BPF_ALU64|BPF_RSH|BPF_K: dst >>= imm
	opMovX    = 0xbf // BPF_ALU64|BPF_MOV|BPF_X: dst = src
	opMovK    = 0xb7 // BPF_ALU64|BPF_MOV|BPF_K: dst = imm
	opJneK    = 0x55 // BPF_JMP|BPF_JNE|BPF_K: if dst != imm goto pc+1+off
	opJeqK    = 0x15 // BPF_JMP|BPF_JEQ|BPF_K: if dst == imm goto pc+1+off
	opExit    = 0x95 // BPF_JMP|BPF_EXIT: return r0
	insnBytes = 8
)

// Registers used by the program. r1 is the context on entry
// (struct bpf_cgroup_dev_ctx { u32 access_type; u32 major; u32 minor; })
// and scratch afterwards.
const (
	r0 = iota
	r1
	r2 // device type (access_type & 0xffff)
	r3 // requested access (access_type >> 16)
	r4 // major
	r5 // minor
)

// deviceProgram compiles rules into a BPF_PROG_TYPE_CGROUP_DEVICE program.
// The last matching rule wins (as with v1's ordered devices.allow/deny
// writes after the initial "deny a"), so rules are tested from the last to
// the first and the first hit returns; no hit denies. An allow rule matches
// when the requested access is a subset of its access; a deny rule when the
// request asks for any access it names. Type "a" matches every device and
// access, as the bare "a" of v1 does.
func deviceProgram(rules []deviceRule) []insn {
	prog := []insn{
		{code: opLdxW, dst: r2, src: r1, off: 0},
		{code: opAndK, dst: r2, imm: 0xffff},
		{code: opLdxW, dst: r3, src: r1, off: 0},
		{code: opRshK, dst: r3, imm: 16},
		{code: opLdxW, dst: r4, src: r1, off: 4},
		{code: opLdxW, dst: r5, src: r1, off: 8},
	}
	verdict := func(allow bool) []insn {
		v := int32(0)
		if allow {
			v = 1
		}
		return []insn{{code: opMovK, dst: r0, imm: v}, {code: opExit}}
	}
	for i := len(rules) - 1; i >= 0; i-- {
		r := rules[i]
		if r.typ == devAll {
			// Unconditional: earlier rules can never be reached.
			return append(prog, verdict(r.allow)...)
		}
		var block []insn
		var jumps []int // indexes in block of jumps to the next rule
		jump := func(in insn) {
			jumps = append(jumps, len(block))
			block = append(block, in)
		}
		jump(insn{code: opJneK, dst: r2, imm: int32(r.typ)})
		if r.access != accAll {
			block = append(block, insn{code: opMovX, dst: r1, src: r3})
			if r.allow {
				block = append(block, insn{code: opAndK, dst: r1, imm: int32(^r.access & accAll)})
				jump(insn{code: opJneK, dst: r1, imm: 0})
			} else {
				block = append(block, insn{code: opAndK, dst: r1, imm: int32(r.access)})
				jump(insn{code: opJeqK, dst: r1, imm: 0})
			}
		}
		if r.major >= 0 {
			jump(insn{code: opJneK, dst: r4, imm: int32(r.major)})
		}
		if r.minor >= 0 {
			jump(insn{code: opJneK, dst: r5, imm: int32(r.minor)})
		}
		block = append(block, verdict(r.allow)...)
		for _, j := range jumps {
			block[j].off = int16(len(block) - j - 1)
		}
		prog = append(prog, block...)
	}
	return append(prog, verdict(false)...)
}

// encode returns the program in the kernel's little-endian byte layout.
func encode(prog []insn) []byte {
	b := make([]byte, 0, len(prog)*insnBytes)
	for _, in := range prog {
		b = append(b, in.code, in.dst&0xf|in.src<<4)
		b = binary.LittleEndian.AppendUint16(b, uint16(in.off))
		b = binary.LittleEndian.AppendUint32(b, uint32(in.imm))
	}
	return b
}

// bpf(2) attributes; only the leading fields of union bpf_attr we use.
type bpfProgLoadAttr struct {
	progType           uint32
	insnCnt            uint32
	insns              uint64
	license            uint64
	logLevel           uint32
	logSize            uint32
	logBuf             uint64
	kernVersion        uint32
	progFlags          uint32
	progName           [16]byte
	progIfindex        uint32
	expectedAttachType uint32
}

type bpfAttachAttr struct {
	targetFd     uint32
	attachBpfFd  uint32
	attachType   uint32
	attachFlags  uint32
	replaceBpfFd uint32
}

type bpfQueryAttr struct {
	targetFd    uint32
	attachType  uint32
	queryFlags  uint32
	attachFlags uint32
	progIDs     uint64
	progCnt     uint32
	_           uint32
}

type bpfGetFDAttr struct {
	progID    uint32
	nextID    uint32
	openFlags uint32
}

func bpf(cmd uintptr, attr unsafe.Pointer, size uintptr) (uintptr, error) {
	r, _, errno := unix.Syscall(unix.SYS_BPF, cmd, uintptr(attr), size)
	if errno != 0 {
		return 0, errno
	}
	return r, nil
}

// loadDeviceProgram loads prog and returns its fd.
func loadDeviceProgram(prog []insn) (int, error) {
	code := encode(prog)
	license := []byte("Apache-2.0\x00")
	logBuf := make([]byte, 64*1024)
	attr := bpfProgLoadAttr{
		progType: unix.BPF_PROG_TYPE_CGROUP_DEVICE,
		insnCnt:  uint32(len(prog)),
		insns:    uint64(uintptr(unsafe.Pointer(&code[0]))),
		license:  uint64(uintptr(unsafe.Pointer(&license[0]))),
		logLevel: 1,
		logSize:  uint32(len(logBuf)),
		logBuf:   uint64(uintptr(unsafe.Pointer(&logBuf[0]))),
	}
	copy(attr.progName[:], "gantry_dev")
	fd, err := bpf(unix.BPF_PROG_LOAD, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(code)
	runtime.KeepAlive(license)
	runtime.KeepAlive(logBuf)
	if err != nil {
		n := 0
		for n < len(logBuf) && logBuf[n] != 0 {
			n++
		}
		if n > 0 {
			return -1, fmt.Errorf("load device eBPF program (verifier: %q): %w", string(logBuf[:n]), err)
		}
		return -1, fmt.Errorf("load device eBPF program: %w", err)
	}
	return int(fd), nil
}

// attachedDevicePrograms returns the ids of the device programs attached to dirFd.
func attachedDevicePrograms(dirFd int) ([]uint32, error) {
	ids := make([]uint32, 64)
	attr := bpfQueryAttr{
		targetFd:   uint32(dirFd),
		attachType: unix.BPF_CGROUP_DEVICE,
		progIDs:    uint64(uintptr(unsafe.Pointer(&ids[0]))),
		progCnt:    uint32(len(ids)),
	}
	_, err := bpf(unix.BPF_PROG_QUERY, unsafe.Pointer(&attr), unsafe.Sizeof(attr))
	runtime.KeepAlive(ids)
	if err != nil {
		return nil, err
	}
	return ids[:attr.progCnt], nil
}

// attachDeviceProgram loads prog and attaches it to the cgroup v2
// directory dir, then detaches the device programs that were there
// before, so an update replaces the rules without a window where no
// program is attached.
func attachDeviceProgram(dir string, prog []insn) error {
	progFd, err := loadDeviceProgram(prog)
	if err != nil {
		return err
	}
	defer unix.Close(progFd)
	dirFd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open cgroup %s: %w", dir, err)
	}
	defer unix.Close(dirFd)
	old, err := attachedDevicePrograms(dirFd)
	if err != nil {
		return fmt.Errorf("query device programs of %s: %w", dir, err)
	}
	attach := bpfAttachAttr{
		targetFd:    uint32(dirFd),
		attachBpfFd: uint32(progFd),
		attachType:  unix.BPF_CGROUP_DEVICE,
		attachFlags: unix.BPF_F_ALLOW_MULTI,
	}
	if _, err := bpf(unix.BPF_PROG_ATTACH, unsafe.Pointer(&attach), unsafe.Sizeof(attach)); err != nil {
		return fmt.Errorf("attach device eBPF program to %s: %w", dir, err)
	}
	for _, id := range old {
		get := bpfGetFDAttr{progID: id}
		fd, err := bpf(unix.BPF_PROG_GET_FD_BY_ID, unsafe.Pointer(&get), unsafe.Sizeof(get))
		if err != nil {
			return fmt.Errorf("open old device program %d of %s: %w", id, dir, err)
		}
		detach := bpfAttachAttr{targetFd: uint32(dirFd), attachBpfFd: uint32(fd), attachType: unix.BPF_CGROUP_DEVICE}
		_, err = bpf(unix.BPF_PROG_DETACH, unsafe.Pointer(&detach), unsafe.Sizeof(detach))
		unix.Close(int(fd))
		if err != nil {
			return fmt.Errorf("detach old device program %d from %s: %w", id, dir, err)
		}
	}
	return nil
}
