package rlimit

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

var table = map[string]int{
	"RLIMIT_AS":         unix.RLIMIT_AS,
	"RLIMIT_CORE":       unix.RLIMIT_CORE,
	"RLIMIT_CPU":        unix.RLIMIT_CPU,
	"RLIMIT_DATA":       unix.RLIMIT_DATA,
	"RLIMIT_FSIZE":      unix.RLIMIT_FSIZE,
	"RLIMIT_LOCKS":      unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK":    unix.RLIMIT_MEMLOCK,
	"RLIMIT_MSGQUEUE":   unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE":       unix.RLIMIT_NICE,
	"RLIMIT_NOFILE":     unix.RLIMIT_NOFILE,
	"RLIMIT_NPROC":      unix.RLIMIT_NPROC,
	"RLIMIT_RSS":        unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO":     unix.RLIMIT_RTPRIO,
	"RLIMIT_RTTIME":     unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK":      unix.RLIMIT_STACK,
}

// Parse maps an rlimit name such as "RLIMIT_NOFILE" to its resource number.
// An unknown name is an error of kind errdefs.ErrInvalidArgument.
func Parse(name string) (int, error) {
	n, ok := table[name]
	if !ok {
		return 0, fmt.Errorf("unknown rlimit type %q: %w", name, errdefs.ErrInvalidArgument)
	}
	return n, nil
}

// Resolve checks every entry of rl (a known type, soft within hard) and
// returns their resource numbers, in order.
func Resolve(rl []specs.POSIXRlimit) ([]int, error) {
	res := make([]int, len(rl))
	for i, r := range rl {
		n, err := Parse(r.Type)
		if err != nil {
			return nil, fmt.Errorf("process.rlimits[%d]: %w", i, err)
		}
		if r.Soft > r.Hard {
			return nil, fmt.Errorf("process.rlimits[%d] %s: soft limit %d exceeds hard limit %d: %w", i, r.Type, r.Soft, r.Hard, errdefs.ErrInvalidArgument)
		}
		res[i] = n
	}
	return res, nil
}

// Apply sets each rlimit in rl on process pid (0 is the calling process) with
// prlimit(2), in order. Applied to the calling process, RLIMIT_NOFILE also
// survives Go's syscall.Exec (which otherwise restores the soft limit the Go
// runtime found at start-up). The error names the rlimit type at fault.
func Apply(pid int, rl []specs.POSIXRlimit) error {
	// Check every entry before changing anything.
	res, err := Resolve(rl)
	if err != nil {
		return err
	}
	for i, r := range rl {
		lim := unix.Rlimit{Cur: r.Soft, Max: r.Hard}
		// unix.Prlimit goes through the syscall package, which then stops
		// restoring its saved RLIMIT_NOFILE on exec.
		if err := unix.Prlimit(pid, res[i], &lim, nil); err != nil {
			return fmt.Errorf("process.rlimits[%d]: set %s to soft %d hard %d: %w", i, r.Type, r.Soft, r.Hard, err)
		}
	}
	return nil
}
