package nsexec

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Exec is the plan of the exec fast path: everything the final process
// does between joining the container's namespaces and execve, computed by
// the parent, applied by execproc.c in the order of the Go init's
// finishProcess. Names are already resolved to numbers and checked; what
// the C side cannot do (a terminal, LSM labels, scheduling attributes, a
// seccomp listener) is never sent this way.
type Exec struct {
	PreserveFDs int
	OOMScoreAdj *int
	// AddHome adds HOME from the container's /etc/passwd (or "/"): Env
	// has no HOME.
	AddHome        bool
	UID, GID       uint32
	AdditionalGids []uint32
	Umask          *uint32
	Rlimits        []Rlimit
	// Capabilities are bit masks over capability numbers up to CapLast
	// (the kernel's last capability, at most 63).
	CapLast                                              int
	Bounding, Effective, Permitted, Inheritable, Ambient uint64
	NoNewPrivs                                           bool
	// Seccomp is the compiled filter in seccomp.Program's binary form
	// (flags, then BPF instructions), or nil.
	Seccomp []byte
	Cwd     string
	Args    []string
	Env     []string
}

// Rlimit is one process.rlimits entry, its type resolved.
type Rlimit struct {
	Type       string // RLIMIT_*, for messages
	Resource   int
	Soft, Hard uint64
}

// flags of the exec section (EXEC_* in execproc.c)
const (
	execOOM = 1 << iota
	execUmask
	execNoNewPrivs
	execHome
	execSeccomp
)

// encode renders the exec section documented at the top of execproc.c.
func (e *Exec) encode() ([]byte, error) {
	if len(e.Args) == 0 {
		return nil, fmt.Errorf("exec section: no args")
	}
	var flags uint32
	var oom int32
	var umask uint32
	if e.OOMScoreAdj != nil {
		flags |= execOOM
		oom = int32(*e.OOMScoreAdj)
	}
	if e.Umask != nil {
		flags |= execUmask
		umask = *e.Umask
	}
	if e.NoNewPrivs {
		flags |= execNoNewPrivs
	}
	if e.AddHome {
		flags |= execHome
	}
	if len(e.Seccomp) > 0 {
		if len(e.Seccomp) < 16 || (len(e.Seccomp)-8)%8 != 0 {
			return nil, fmt.Errorf("exec section: seccomp program of %d bytes", len(e.Seccomp))
		}
		flags |= execSeccomp
	}
	size := 128 + 4*len(e.AdditionalGids) + len(e.Seccomp) + 2*len(e.Cwd) + 2*len(e.Args[0])
	for _, s := range e.Args {
		size += len(s) + 1
	}
	for _, s := range e.Env {
		size += len(s) + 1
	}
	b := make([]byte, 0, size)
	le := binary.LittleEndian
	u32 := func(v uint32) { b = le.AppendUint32(b, v) }
	var bad string
	str := func(s string) {
		if strings.IndexByte(s, 0) >= 0 {
			bad = s
		}
		b = append(append(b, s...), 0)
	}
	u32(1)
	u32(flags)
	u32(uint32(int32(e.PreserveFDs)))
	u32(uint32(oom))
	u32(e.UID)
	u32(e.GID)
	u32(umask)
	u32(uint32(e.CapLast))
	for _, m := range []uint64{e.Bounding, e.Effective, e.Permitted, e.Inheritable, e.Ambient} {
		b = le.AppendUint64(b, m)
	}
	u32(uint32(len(e.AdditionalGids)))
	for _, g := range e.AdditionalGids {
		u32(g)
	}
	u32(uint32(len(e.Rlimits)))
	for _, r := range e.Rlimits {
		u32(uint32(r.Resource))
		b = le.AppendUint64(b, r.Soft)
		b = le.AppendUint64(b, r.Hard)
		str(r.Type)
	}
	if len(e.Seccomp) > 0 {
		b = append(b, e.Seccomp[:8]...)
		u32(uint32((len(e.Seccomp) - 8) / 8))
		b = append(b, e.Seccomp[8:]...)
	} else {
		b = le.AppendUint64(b, 0)
		u32(0)
	}
	str(e.Cwd)
	str(strconv.Quote(e.Cwd))
	str(strconv.Quote(e.Args[0]))
	u32(uint32(len(e.Args)))
	for _, s := range e.Args {
		str(s)
	}
	u32(uint32(len(e.Env)))
	for _, s := range e.Env {
		str(s)
	}
	if bad != "" {
		return nil, fmt.Errorf("exec section: %q holds a NUL byte", bad)
	}
	return b, nil
}
