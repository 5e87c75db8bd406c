// The Go runtime would keep cgroup files open to track the CPU limit; a
// probe that reports its open fds must not hold any of its own.
//
//go:debug containermaxprocs=0
//go:debug updatemaxprocs=0
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/probe/report"
)

const usage = `usage: probe COMMAND [ARGS]
  report [SYSCTL...]     print what the process sees as JSON
  exit N                 exit with status N
  sleep SECONDS          sleep, then exit 0
  cat FILE               copy FILE to stdout
  write FILE TEXT        write TEXT to FILE (created 0644, truncated)
  stat PATH              print mode, type, owner and device numbers as JSON
  ls DIR                 print the sorted names in DIR, one a line
  try-open PATH [rdwr]   open PATH read-only (or read-write), print OK or the errno name
  signals                print "ready", then each signal received, one a line; exit 143 on SIGTERM
  syscall NAME           make one syscall (mkdir, mkdirat, chmod, fchmodat, chown,
                         personality, sethostname, unshare-uts, getpid), print OK or the errno name
  reopen-exe PID         open /proc/PID/exe with O_PATH, print "opened"; once PID has
                         executed another binary (or after 60s), reopen the fd for
                         writing and write back its first byte; print "open: E",
                         "reopen: E" or "write: E" (E an errno name or OK)
`

// The fds are listed before main runs, before the probe opens anything.
var startFDs, startFDsErr = openFDs()

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	switch cmd {
	case "report":
		err = printReport(args)
	case "exit":
		var n int
		if n, err = oneInt(args); err == nil {
			os.Exit(n)
		}
	case "sleep":
		var n int
		if n, err = oneInt(args); err == nil {
			time.Sleep(time.Duration(n) * time.Second)
		}
	case "cat":
		err = cat(args)
	case "write":
		if len(args) != 2 {
			err = errors.New("write: want FILE TEXT")
			break
		}
		err = os.WriteFile(args[0], []byte(args[1]), 0o644)
	case "stat":
		err = stat(args)
	case "ls":
		err = ls(args)
	case "try-open":
		err = tryOpen(args)
	case "signals":
		signals()
	case "syscall":
		err = trySyscall(args)
	case "reopen-exe":
		err = reopenExe(args)
	case "-h", "--help", "help":
		fmt.Print(usage)
	default:
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "probe %s: %v\n", cmd, err)
		os.Exit(1)
	}
}

func oneInt(args []string) (int, error) {
	if len(args) != 1 {
		return 0, errors.New("want one integer argument")
	}
	return strconv.Atoi(args[0])
}

func cat(args []string) error {
	if len(args) != 1 {
		return errors.New("want FILE")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(os.Stdout, f)
	return err
}

func stat(args []string) error {
	if len(args) != 1 {
		return errors.New("want PATH")
	}
	var st unix.Stat_t
	if err := unix.Lstat(args[0], &st); err != nil {
		return fmt.Errorf("lstat %s: %w", args[0], err)
	}
	types := map[uint32]string{
		unix.S_IFREG: "file", unix.S_IFDIR: "dir", unix.S_IFLNK: "symlink",
		unix.S_IFCHR: "char", unix.S_IFBLK: "block", unix.S_IFIFO: "fifo",
		unix.S_IFSOCK: "socket",
	}
	s := report.Stat{
		Mode:  st.Mode & 0o7777,
		Type:  types[st.Mode&unix.S_IFMT],
		UID:   int(st.Uid),
		GID:   int(st.Gid),
		Size:  st.Size,
		Major: unix.Major(st.Rdev),
		Minor: unix.Minor(st.Rdev),
	}
	return json.NewEncoder(os.Stdout).Encode(s)
}

func ls(args []string) error {
	if len(args) != 1 {
		return errors.New("want DIR")
	}
	ents, err := os.ReadDir(args[0])
	if err != nil {
		return err
	}
	for _, e := range ents { // ReadDir sorts by name
		fmt.Println(e.Name())
	}
	return nil
}

func errnoName(err error) string {
	if err == nil {
		return "OK"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		if n := unix.ErrnoName(errno); n != "" {
			return n
		}
		return "errno" + strconv.Itoa(int(errno))
	}
	return err.Error()
}

func tryOpen(args []string) error {
	if len(args) < 1 || len(args) > 2 || (len(args) == 2 && args[1] != "rdwr") {
		return errors.New("want PATH [rdwr]")
	}
	flags := unix.O_RDONLY
	if len(args) == 2 {
		flags = unix.O_RDWR
	}
	fd, err := unix.Open(args[0], flags|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if err == nil {
		unix.Close(fd)
	}
	fmt.Println(errnoName(err))
	return nil
}

func signals() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch)
	fmt.Println("ready")
	for s := range ch {
		sig, ok := s.(syscall.Signal)
		if !ok {
			continue
		}
		if sig == syscall.SIGURG { // the Go runtime's preemption signal
			continue
		}
		fmt.Println(unix.SignalName(sig))
		if sig == syscall.SIGTERM {
			os.Exit(143)
		}
	}
}

func trySyscall(args []string) error {
	if len(args) != 1 {
		return errors.New("want NAME")
	}
	dir := "/tmp/probe-syscall"
	fdcwd := unix.AT_FDCWD
	atFDCWD := uintptr(fdcwd)
	var errno syscall.Errno
	switch args[0] {
	case "mkdir":
		p, _ := unix.BytePtrFromString(dir)
		_, _, errno = unix.Syscall(unix.SYS_MKDIR, uintptr(unsafe.Pointer(p)), 0o755, 0)
	case "mkdirat":
		p, _ := unix.BytePtrFromString(dir)
		_, _, errno = unix.Syscall(unix.SYS_MKDIRAT, atFDCWD, uintptr(unsafe.Pointer(p)), 0o755)
	case "chmod":
		p, _ := unix.BytePtrFromString("/tmp")
		_, _, errno = unix.Syscall(unix.SYS_CHMOD, uintptr(unsafe.Pointer(p)), 0o1777, 0)
	case "fchmodat":
		p, _ := unix.BytePtrFromString("/tmp")
		_, _, errno = unix.Syscall(unix.SYS_FCHMODAT, atFDCWD, uintptr(unsafe.Pointer(p)), 0o1777)
	case "chown":
		p, _ := unix.BytePtrFromString("/tmp")
		_, _, errno = unix.Syscall(unix.SYS_CHOWN, uintptr(unsafe.Pointer(p)), 0, 0)
	case "personality":
		_, _, errno = unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0)
	case "sethostname":
		name, _ := os.Hostname()
		errno = asErrno(unix.Sethostname([]byte(name)))
	case "unshare-uts":
		errno = asErrno(unix.Unshare(unix.CLONE_NEWUTS))
	case "getpid":
		_, _, errno = unix.Syscall(unix.SYS_GETPID, 0, 0, 0)
	default:
		return fmt.Errorf("unknown syscall %q", args[0])
	}
	if errno == 0 {
		fmt.Println("OK")
	} else {
		fmt.Println(errnoName(errno))
	}
	return nil
}

// reopenExe is the CVE-2019-5736 attack on a runtime binary: hold
// /proc/PID/exe with O_PATH while PID runs it, and write through the fd
// once PID has moved on (when the binary is no longer busy). The byte
// written is the one already there, so even a success changes nothing.
func reopenExe(args []string) error {
	pid, err := oneInt(args)
	if err != nil {
		return err
	}
	exe := "/proc/" + strconv.Itoa(pid) + "/exe"
	before, _ := os.Readlink(exe)
	fd, err := unix.Open(exe, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("open: " + errnoName(err))
		return nil
	}
	fmt.Println("opened")
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); {
		if now, err := os.Readlink(exe); err != nil || now != before {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	self := "/proc/self/fd/" + strconv.Itoa(fd)
	wfd, err := unix.Open(self, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("reopen: " + errnoName(err))
		return nil
	}
	defer unix.Close(wfd)
	// Never write without knowing the byte that is there.
	first := make([]byte, 1)
	rfd, err := unix.Open(self, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		fmt.Println("read: " + errnoName(err))
		return nil
	}
	n, err := unix.Pread(rfd, first, 0)
	unix.Close(rfd)
	if err != nil || n != 1 {
		fmt.Println("read: " + errnoName(err))
		return nil
	}
	_, err = unix.Pwrite(wfd, first, 0)
	fmt.Println("write: " + errnoName(err))
	return nil
}

func asErrno(err error) syscall.Errno {
	var e syscall.Errno
	if err == nil {
		return 0
	}
	if errors.As(err, &e) {
		return e
	}
	return syscall.EINVAL
}

// printReport gathers the report; a part that cannot be read is noted in
// Errors rather than failing the whole report.
func printReport(sysctls []string) error {
	r := &report.Report{
		Args:       os.Args,
		PID:        os.Getpid(),
		PPID:       os.Getppid(),
		UID:        os.Getuid(),
		GID:        os.Getgid(),
		EUID:       os.Geteuid(),
		EGID:       os.Getegid(),
		Env:        os.Environ(),
		Caps:       map[string]string{},
		Rlimits:    map[string]report.Rlimit{},
		Namespaces: map[string]uint64{},
		FDs:        map[int]string{},
		Sysctls:    map[string]string{},
		Groups:     []int{},
	}
	note := func(what string, err error) {
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", what, err))
		}
	}
	r.FDs = startFDs
	note("fds", startFDsErr)

	groups, err := unix.Getgroups()
	note("getgroups", err)
	if groups != nil {
		sort.Ints(groups)
		r.Groups = groups
	}
	old := unix.Umask(0)
	unix.Umask(old)
	r.Umask = uint32(old)
	r.Cwd, err = os.Getwd()
	note("getwd", err)

	var uts unix.Utsname
	if err := unix.Uname(&uts); err != nil {
		note("uname", err)
	} else {
		r.Hostname = unix.ByteSliceToString(uts.Nodename[:])
		r.Domainname = unix.ByteSliceToString(uts.Domainname[:])
	}

	note("status", readStatus(r))
	note("rlimits", readRlimits(r))
	if b, err := os.ReadFile("/proc/self/oom_score_adj"); err != nil {
		note("oom_score_adj", err)
	} else {
		r.OOMScoreAdj, err = strconv.Atoi(strings.TrimSpace(string(b)))
		note("oom_score_adj", err)
	}
	note("namespaces", readNamespaces(r))
	if b, err := os.ReadFile("/proc/self/cgroup"); err != nil {
		note("cgroup", err)
	} else {
		r.Cgroup = lines(string(b))
	}
	note("mountinfo", readMounts(r))

	if p, _, errno := unix.Syscall(unix.SYS_PERSONALITY, 0xffffffff, 0, 0); errno != 0 {
		note("personality", errno)
	} else {
		r.Personality = int(p)
	}
	if attr, err := unix.SchedGetAttr(0, 0); err != nil {
		note("sched_getattr", err)
	} else {
		r.SchedPolicy, r.SchedPriority, r.SchedNice = attr.Policy, attr.Priority, attr.Nice
	}
	const ioprioWhoProcess = 1
	if p, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0); errno != 0 {
		note("ioprio_get", errno)
	} else {
		r.IOPrio = int(p)
	}
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		note("sched_getaffinity", err)
	} else {
		for i := 0; i < len(set)*64; i++ {
			if set.IsSet(i) {
				r.CPUAffinity = append(r.CPUAffinity, i)
			}
		}
	}
	for _, s := range sysctls {
		p := "/proc/sys/" + strings.ReplaceAll(s, ".", "/")
		b, err := os.ReadFile(p)
		if err != nil {
			note("sysctl "+s, err)
			continue
		}
		r.Sysctls[s] = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/self/timens_offsets"); err == nil {
		r.TimensOffsets = string(b)
	}
	for fd := 0; fd < 3; fd++ {
		if _, err := unix.IoctlGetTermios(fd, unix.TCGETS); err == nil {
			r.TTY[fd].IsTTY = true
			r.TTY[fd].Name, _ = os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		}
	}
	if b, err := os.ReadFile("/proc/self/attr/current"); err == nil {
		r.LSMLabel = strings.TrimRight(string(b), "\x00\n")
	}

	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(r)
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			out = append(out, l)
		}
	}
	return out
}

// openFDs lists the open fds with raw syscalls, so that nothing of the Go
// runtime (its poller's epoll and eventfd) is created before the list is
// read. The fd used to read the directory is left out.
func openFDs() (map[int]string, error) {
	out := map[int]string{}
	dfd, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return out, fmt.Errorf("open /proc/self/fd: %w", err)
	}
	defer unix.Close(dfd)
	var fds []int
	buf := make([]byte, 8192)
	for {
		n, err := unix.Getdents(dfd, buf)
		if err != nil {
			return out, fmt.Errorf("getdents /proc/self/fd: %w", err)
		}
		if n == 0 {
			break
		}
		_, _, names := unix.ParseDirent(buf[:n], -1, nil)
		for _, name := range names {
			if fd, err := strconv.Atoi(name); err == nil && fd != dfd {
				fds = append(fds, fd)
			}
		}
	}
	lbuf := make([]byte, 4096)
	for _, fd := range fds {
		n, err := unix.Readlink("/proc/self/fd/"+strconv.Itoa(fd), lbuf)
		if err != nil {
			continue
		}
		out[fd] = string(lbuf[:n])
	}
	return out, nil
}

func readStatus(r *report.Report) error {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb":
			r.Caps[k] = v
		case "NoNewPrivs":
			r.NoNewPrivs, _ = strconv.Atoi(v)
		case "Seccomp":
			r.Seccomp, _ = strconv.Atoi(v)
		case "Seccomp_filters":
			r.SeccompFilters, _ = strconv.Atoi(v)
		}
	}
	return sc.Err()
}

var rlimitNames = map[string]int{
	"RLIMIT_CPU": unix.RLIMIT_CPU, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_STACK": unix.RLIMIT_STACK,
	"RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_AS": unix.RLIMIT_AS,
	"RLIMIT_LOCKS": unix.RLIMIT_LOCKS, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
}

func readRlimits(r *report.Report) error {
	var errs []error
	for name, res := range rlimitNames {
		var lim unix.Rlimit
		// prlimit, not getrlimit: the Go runtime raises its own soft
		// RLIMIT_NOFILE at start-up but restores it for children only, so
		// ask the kernel about this process and report what it holds.
		if err := unix.Prlimit(0, res, nil, &lim); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		r.Rlimits[name] = report.Rlimit{Soft: lim.Cur, Hard: lim.Max}
	}
	// The Go runtime raises its own soft RLIMIT_NOFILE to hard-1 at
	// start-up and restores it only in the children it starts. When that
	// happened, ask a non-Go child (cat from the rootfs) what it got.
	if lim := r.Rlimits["RLIMIT_NOFILE"]; lim.Hard > 0 && lim.Soft == lim.Hard-1 {
		soft, err := childNofile()
		if err != nil {
			errs = append(errs, fmt.Errorf("RLIMIT_NOFILE soft limit may be the Go runtime's: %w", err))
		} else {
			lim.Soft = soft
			r.Rlimits["RLIMIT_NOFILE"] = lim
		}
	}
	return errors.Join(errs...)
}

// childNofile returns the soft RLIMIT_NOFILE that /bin/cat, a child, sees.
func childNofile() (uint64, error) {
	out, err := exec.Command("/bin/cat", "/proc/self/limits").Output()
	if err != nil {
		return 0, fmt.Errorf("run /bin/cat /proc/self/limits: %w", err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if rest, ok := strings.CutPrefix(l, "Max open files"); ok {
			f := strings.Fields(rest)
			if len(f) < 1 {
				break
			}
			if f[0] == "unlimited" {
				return unix.RLIM_INFINITY, nil
			}
			return strconv.ParseUint(f[0], 10, 64)
		}
	}
	return 0, errors.New("no \"Max open files\" line in /proc/self/limits")
}

func readNamespaces(r *report.Report) error {
	ents, err := os.ReadDir("/proc/self/ns")
	if err != nil {
		return err
	}
	for _, e := range ents {
		var st unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+e.Name(), &st); err != nil {
			continue
		}
		r.Namespaces[e.Name()] = st.Ino
	}
	return nil
}

// readMounts parses /proc/self/mountinfo:
// id parent major:minor root point options [optional...] - fstype source super
func readMounts(r *report.Report) error {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	for _, l := range lines(string(b)) {
		f := strings.Fields(l)
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 {
			continue
		}
		m := report.Mount{Root: unescape(f[3]), Point: unescape(f[4]), Options: f[5]}
		if sep+1 < len(f) {
			m.FSType = f[sep+1]
		}
		if sep+2 < len(f) {
			m.Source = unescape(f[sep+2])
		}
		if sep+3 < len(f) {
			m.SuperOptions = f[sep+3]
		}
		r.Mounts = append(r.Mounts, m)
	}
	return nil
}

// unescape undoes the octal escapes (\040 for space) of mountinfo.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
