package nsexec

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// EnvInitFD names the environment variable that holds the bootstrap socket's
// fd number in the bootstrap process. Its presence is what makes the C
// constructor act.
const EnvInitFD = "_GANTRY_INIT_FD"

// Join is a namespace to join by path.
type Join struct {
	Type string // user, mnt, pid, net, ipc, uts, cgroup, time
	Path string
}

// Bootstrap is the message the parent sends to the C bootstrap.
type Bootstrap struct {
	CloneFlags  uintptr  // CLONE_NEW* flags of the namespaces to create
	Joins       []Join   // namespaces to join, user first
	TimeOffsets []string // lines for /proc/self/timens_offsets, e.g. "monotonic 5 0"
	Fork        bool     // clone a child, needed to enter a new or joined PID namespace
	// Keep lists the fds (>= 3) to keep open; every other fd but the
	// socket is closed before anything else happens.
	Keep []int
	// CgroupV1 and CgroupV2 are the cgroup directories the bootstrap
	// enters itself, before anything else (see enter_cgroups in nsexec.c:
	// the kernel's fast path, no RCU grace period).
	CgroupV1 []string
	CgroupV2 string
	// Exec, when set, makes the final process apply it and execute the
	// process itself, in C, instead of returning to the Go runtime (the
	// exec fast path; see execproc.c).
	Exec *Exec
}

// NamespaceTypes maps runtime-spec namespace types to the names nsexec.c
// knows and to their clone flags.
var NamespaceTypes = map[string]struct {
	Name string
	Flag uintptr
}{
	"user":    {"user", unix.CLONE_NEWUSER},
	"mount":   {"mnt", unix.CLONE_NEWNS},
	"pid":     {"pid", unix.CLONE_NEWPID},
	"network": {"net", unix.CLONE_NEWNET},
	"ipc":     {"ipc", unix.CLONE_NEWIPC},
	"uts":     {"uts", unix.CLONE_NEWUTS},
	"cgroup":  {"cgroup", unix.CLONE_NEWCGROUP},
	"time":    {"time", unix.CLONE_NEWTIME},
}

// Encode renders the message. A value with a newline cannot be encoded.
func (b *Bootstrap) Encode() ([]byte, error) {
	var sb strings.Builder
	fmt.Fprintf(&sb, "clone %x\n", b.CloneFlags)
	for _, j := range b.Joins {
		if strings.ContainsAny(j.Type, " \n") || strings.Contains(j.Path, "\n") || j.Path == "" {
			return nil, fmt.Errorf("namespace %s path %q cannot be encoded", j.Type, j.Path)
		}
		fmt.Fprintf(&sb, "join %s %s\n", j.Type, j.Path)
	}
	for _, t := range b.TimeOffsets {
		if strings.Contains(t, "\n") {
			return nil, fmt.Errorf("time offset %q cannot be encoded", t)
		}
		fmt.Fprintf(&sb, "timens %s\n", t)
	}
	if b.Fork {
		sb.WriteString("fork 1\n")
	}
	for _, d := range b.CgroupV1 {
		if strings.Contains(d, "\n") || d == "" {
			return nil, fmt.Errorf("cgroup %q cannot be encoded", d)
		}
		fmt.Fprintf(&sb, "cgroup1 %s\n", d)
	}
	if b.CgroupV2 != "" {
		if strings.Contains(b.CgroupV2, "\n") {
			return nil, fmt.Errorf("cgroup %q cannot be encoded", b.CgroupV2)
		}
		fmt.Fprintf(&sb, "cgroup2 %s\n", b.CgroupV2)
	}
	for _, fd := range b.Keep {
		if fd < 3 || fd >= 1024 {
			return nil, fmt.Errorf("fd %d cannot be kept (3..1023)", fd)
		}
		fmt.Fprintf(&sb, "keep %d\n", fd)
	}
	var section []byte
	if b.Exec != nil {
		var err error
		if section, err = b.Exec.encode(); err != nil {
			return nil, err
		}
		fmt.Fprintf(&sb, "exec %d\n", len(section))
	}
	sb.WriteString("\n")
	return append([]byte(sb.String()), section...), nil
}

// Drive sends b on w and follows the bootstrap's replies read from r until
// it reports the init's pid. usermap is called with the pid whose uid/gid
// maps must be written when the bootstrap created a user namespace.
func Drive(w io.Writer, r *bufio.Reader, b *Bootstrap, usermap func(pid int) error) (int, error) {
	msg, err := b.Encode()
	if err != nil {
		return 0, err
	}
	if _, err := w.Write(msg); err != nil {
		return 0, fmt.Errorf("send bootstrap message: %w", err)
	}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			if err == io.EOF {
				return 0, fmt.Errorf("bootstrap process exited without reporting")
			}
			return 0, fmt.Errorf("read from bootstrap process: %w", err)
		}
		line = strings.TrimSuffix(line, "\n")
		verb, arg, _ := strings.Cut(line, " ")
		switch verb {
		case "usermap":
			pid, err := strconv.Atoi(arg)
			if err != nil {
				return 0, fmt.Errorf("bootstrap process: bad usermap line %q", line)
			}
			if usermap == nil {
				return 0, fmt.Errorf("bootstrap process asked for user namespace maps, none configured")
			}
			if err := usermap(pid); err != nil {
				return 0, err
			}
			if _, err := io.WriteString(w, "ok\n"); err != nil {
				return 0, fmt.Errorf("answer bootstrap process: %w", err)
			}
		case "pid":
			pid, err := strconv.Atoi(arg)
			if err != nil || pid <= 0 {
				return 0, fmt.Errorf("bootstrap process: bad pid line %q", line)
			}
			return pid, nil
		case "error":
			return 0, fmt.Errorf("%s", arg)
		default:
			return 0, fmt.Errorf("bootstrap process: unexpected line %q", line)
		}
	}
}

// Executed follows an exec fast path after Drive returned the pid: it reads
// until EOF (the socket is close-on-exec: the process is executed) or an
// error line (the process failed before execve and exits).
func Executed(r *bufio.Reader) error {
	line, err := r.ReadString('\n')
	if err == io.EOF && line == "" {
		return nil
	}
	if err != nil && err != io.EOF {
		return fmt.Errorf("read from exec process: %w", err)
	}
	line = strings.TrimSuffix(line, "\n")
	if msg, ok := strings.CutPrefix(line, "error "); ok {
		return fmt.Errorf("%s", msg)
	}
	return fmt.Errorf("exec process: unexpected line %q", line)
}

// LatePid reads what is left of the bootstrap's replies after Drive failed
// and returns the pid they report, or 0. With an exec section the final
// process may report its failure before the bootstrap reports its pid; the
// caller then still has a child to reap.
func LatePid(r *bufio.Reader) int {
	for {
		line, err := r.ReadString('\n')
		if v, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "pid "); ok {
			if pid, err := strconv.Atoi(v); err == nil && pid > 0 {
				return pid
			}
		}
		if err != nil {
			return 0
		}
	}
}
