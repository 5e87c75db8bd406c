package integration

import (
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/bundle"
)

func TestRunExitCode(t *testing.T) {
	for _, code := range []int{0, 1, 7, 255} {
		b := bundle.New(t, bundle.Args("/probe", "exit", strconv.Itoa(code)))
		_, stderr, got := Run(t, "run", "--bundle", b.Dir, b.ID)
		if got != code {
			t.Errorf("run with /probe exit %d: exit status %d, stderr: %s", code, got, stderr)
		}
	}
}

func TestProcessEnvCwdArgs(t *testing.T) {
	b := bundle.New(t, func(s *specs.Spec) {
		s.Process.Args = []string{"/probe", "report", "kernel.ostype"}
		s.Process.Env = []string{"PATH=/bin", "GANTRY_A=1", "GANTRY_B=with space=and equals"}
		s.Process.Cwd = "/tmp"
	})
	r := RunBundle(t, b)
	if want := []string{"/probe", "report", "kernel.ostype"}; !reflect.DeepEqual(r.Args, want) {
		t.Errorf("args = %q, want %q", r.Args, want)
	}
	if r.Cwd != "/tmp" {
		t.Errorf("cwd = %q, want /tmp", r.Cwd)
	}
	for k, want := range map[string]string{"PATH": "/bin", "GANTRY_A": "1", "GANTRY_B": "with space=and equals"} {
		if got, ok := r.Getenv(k); !ok || got != want {
			t.Errorf("env %s = %q (set %v), want %q", k, got, ok, want)
		}
	}
	if _, ok := r.Getenv("TERM"); ok {
		t.Errorf("env TERM is set but process.env does not hold it: %q", r.Env)
	}
	if r.PID != 1 {
		t.Errorf("pid = %d, want 1 in a new pid namespace", r.PID)
	}
	if got := r.Sysctls["kernel.ostype"]; got != "Linux" {
		t.Errorf("kernel.ostype = %q, want Linux", got)
	}
}

func TestUser(t *testing.T) {
	b := bundle.New(t, func(s *specs.Spec) {
		umask := uint32(0o027)
		s.Process.User = specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{1001, 5}, Umask: &umask}
		s.Process.Cwd = "/home/tester"
	})
	r := RunBundle(t, b)
	if r.UID != 1000 || r.EUID != 1000 || r.GID != 1000 || r.EGID != 1000 {
		t.Errorf("uid/euid/gid/egid = %d/%d/%d/%d, want 1000 for all", r.UID, r.EUID, r.GID, r.EGID)
	}
	if want := []int{5, 1001}; !reflect.DeepEqual(r.Groups, want) {
		t.Errorf("groups = %v, want %v", r.Groups, want)
	}
	if r.Umask != 0o027 {
		t.Errorf("umask = %#o, want 027", r.Umask)
	}
	if home, _ := r.Getenv("HOME"); home != "/home/tester" {
		t.Errorf("HOME = %q, want /home/tester (from /etc/passwd)", home)
	}
}

func capMask(caps ...int) uint64 {
	var m uint64
	for _, c := range caps {
		m |= 1 << uint(c)
	}
	return m
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		name string
		user specs.User
		caps specs.LinuxCapabilities
		want map[string]uint64
	}{
		{
			name: "root",
			user: specs.User{UID: 0, GID: 0},
			caps: specs.LinuxCapabilities{
				Bounding:  []string{"CAP_CHOWN", "CAP_KILL"},
				Effective: []string{"CAP_CHOWN", "CAP_KILL"},
				Permitted: []string{"CAP_CHOWN", "CAP_KILL"},
			},
			want: map[string]uint64{
				"CapBnd": capMask(unix.CAP_CHOWN, unix.CAP_KILL),
				"CapEff": capMask(unix.CAP_CHOWN, unix.CAP_KILL),
				"CapPrm": capMask(unix.CAP_CHOWN, unix.CAP_KILL),
				"CapInh": 0,
				"CapAmb": 0,
			},
		},
		{
			// For a non-root user execve keeps only the ambient set in
			// the permitted and effective sets.
			name: "non-root with ambient",
			user: specs.User{UID: 1000, GID: 1000},
			caps: specs.LinuxCapabilities{
				Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW", "CAP_SETUID"},
				Effective:   []string{"CAP_KILL", "CAP_NET_RAW"},
				Permitted:   []string{"CAP_KILL", "CAP_NET_RAW"},
				Inheritable: []string{"CAP_KILL", "CAP_NET_RAW"},
				Ambient:     []string{"CAP_NET_RAW"},
			},
			want: map[string]uint64{
				"CapBnd": capMask(unix.CAP_CHOWN, unix.CAP_KILL, unix.CAP_NET_RAW, unix.CAP_SETUID),
				"CapEff": capMask(unix.CAP_NET_RAW),
				"CapPrm": capMask(unix.CAP_NET_RAW),
				"CapInh": capMask(unix.CAP_KILL, unix.CAP_NET_RAW),
				"CapAmb": capMask(unix.CAP_NET_RAW),
			},
		},
		{
			name: "none",
			user: specs.User{UID: 0, GID: 0},
			caps: specs.LinuxCapabilities{},
			want: map[string]uint64{"CapBnd": 0, "CapEff": 0, "CapPrm": 0, "CapInh": 0, "CapAmb": 0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bundle.New(t, func(s *specs.Spec) {
				s.Process.User = tt.user
				c := tt.caps
				s.Process.Capabilities = &c
			})
			r := RunBundle(t, b)
			for _, set := range []string{"CapBnd", "CapEff", "CapPrm", "CapInh", "CapAmb"} {
				got, err := r.Cap(set)
				if err != nil {
					t.Error(err)
					continue
				}
				if got != tt.want[set] {
					t.Errorf("%s = %#x, want %#x", set, got, tt.want[set])
				}
			}
		})
	}
}

func TestRlimits(t *testing.T) {
	want := map[string][2]uint64{
		"RLIMIT_NOFILE": {512, 1000},
		"RLIMIT_NPROC":  {100, 200},
		"RLIMIT_CORE":   {1024, 4096},
		"RLIMIT_STACK":  {4 << 20, 16 << 20},
	}
	b := bundle.New(t, func(s *specs.Spec) {
		s.Process.Rlimits = nil
		for k, v := range want {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: k, Soft: v[0], Hard: v[1]})
		}
	})
	r := RunBundle(t, b)
	for k, v := range want {
		got, ok := r.Rlimits[k]
		if !ok {
			t.Errorf("%s not reported", k)
			continue
		}
		if got.Soft != v[0] || got.Hard != v[1] {
			t.Errorf("%s = %d/%d, want %d/%d", k, got.Soft, got.Hard, v[0], v[1])
		}
	}
}

func TestNoNewPrivileges(t *testing.T) {
	for _, nnp := range []bool{true, false} {
		b := bundle.New(t, func(s *specs.Spec) { s.Process.NoNewPrivileges = nnp })
		r := RunBundle(t, b)
		want := 0
		if nnp {
			want = 1
		}
		if r.NoNewPrivs != want {
			t.Errorf("noNewPrivileges %v: NoNewPrivs = %d, want %d", nnp, r.NoNewPrivs, want)
		}
	}
}

func TestHostnameDomainname(t *testing.T) {
	hostHost, _ := os.Hostname()
	b := bundle.New(t, func(s *specs.Spec) {
		s.Hostname = "gantry-box"
		s.Domainname = "example.test"
	})
	r := RunBundle(t, b)
	if r.Hostname != "gantry-box" {
		t.Errorf("hostname = %q, want gantry-box", r.Hostname)
	}
	if runtimeIsRunc {
		t.Log("runc 1.1 ignores domainname; not checked")
	} else if r.Domainname != "example.test" {
		t.Errorf("domainname = %q, want example.test", r.Domainname)
	}
	if now, _ := os.Hostname(); now != hostHost {
		t.Errorf("host hostname changed from %q to %q", hostHost, now)
	}
}

func TestNamespaces(t *testing.T) {
	b := bundle.New(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	})
	r := RunBundle(t, b)
	for _, kind := range []string{"pid", "net", "ipc", "uts", "mnt", "cgroup"} {
		got, ok := r.Namespaces[kind]
		if !ok {
			t.Errorf("namespace %s not reported", kind)
			continue
		}
		if got == hostNamespace(t, kind) {
			t.Errorf("namespace %s: inode %d is the host's, want a new one", kind, got)
		}
	}
	// Kinds the spec does not ask for are shared with the runtime's caller.
	for _, kind := range []string{"user", "time"} {
		if got, ok := r.Namespaces[kind]; ok && got != hostNamespace(t, kind) {
			t.Errorf("namespace %s: inode %d, want the host's %d", kind, got, hostNamespace(t, kind))
		}
	}
}

func TestTimeNamespace(t *testing.T) {
	skipIfRunc(t, "no time namespace support (linux.timeOffsets)")
	b := bundle.New(t, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.TimeNamespace})
		s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{
			"monotonic": {Secs: 1000},
			"boottime":  {Secs: 2000, Nanosecs: 5},
		}
	})
	r := RunBundle(t, b)
	if r.Namespaces["time"] == hostNamespace(t, "time") {
		t.Errorf("time namespace is the host's")
	}
	got := strings.Fields(r.TimensOffsets)
	want := []string{"monotonic", "1000", "0", "boottime", "2000", "5"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("timens_offsets = %q, want %q", got, want)
	}
}

func TestMounts(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "hello"), []byte("hi\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := bundle.New(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "nodev", "noexec", "mode=1750", "size=1m"}},
			specs.Mount{Destination: "/data", Type: "bind", Source: src,
				Options: []string{"bind", "ro"}},
		)
	})
	r := RunBundle(t, b)
	scratch := r.MountAt("/scratch")
	if scratch == nil {
		t.Fatalf("no mount at /scratch; mounts: %+v", r.Mounts)
	}
	if scratch.FSType != "tmpfs" {
		t.Errorf("/scratch fstype = %q, want tmpfs", scratch.FSType)
	}
	for _, o := range []string{"nosuid", "nodev", "noexec", "size=1024k", "mode=1750"} {
		if !scratch.HasOption(o) {
			t.Errorf("/scratch options %q / %q lack %s", scratch.Options, scratch.SuperOptions, o)
		}
	}
	data := r.MountAt("/data")
	if data == nil {
		t.Fatalf("no mount at /data")
	}
	if !strings.HasPrefix(data.Options, "ro") {
		t.Errorf("/data options = %q, want ro", data.Options)
	}
	if root := r.MountAt("/"); root == nil || !strings.HasPrefix(root.Options, "ro") {
		t.Errorf("/ mount = %+v, want read-only (root.readonly)", root)
	}

	// What the mounts do: the bind shows the host file and refuses writes;
	// masked paths are empty; readonly paths refuse writes.
	b2 := bundle.New(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "bind", Source: src,
			Options: []string{"bind", "ro"}})
		s.Process.Args = []string{"/bin/sh", "-c", strings.Join([]string{
			"/probe cat /data/hello",
			"/probe try-open /data/hello rdwr",
			"/probe stat /proc/keys",
			"echo ls:$(/probe ls /sys/firmware)",
			"/probe try-open /proc/sys/kernel/domainname rdwr",
			"/probe try-open /proc/sys/kernel/domainname",
		}, "; ")}
	})
	out := strings.Split(strings.TrimSpace(RunOutput(t, b2)), "\n")
	want := []string{
		"hi",
		"EROFS",
		`{"mode":438,"type":"char","uid":0,"gid":0,"major":1,"minor":3,"size":0}`,
		"ls:",
		"EROFS",
		"OK",
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("in-container checks:\n got %q\nwant %q", out, want)
	}
}

func TestDevices(t *testing.T) {
	mode := os.FileMode(0o640)
	uid, gid := uint32(1000), uint32(1001)
	b := bundle.New(t, func(s *specs.Spec) {
		s.Linux.Devices = []specs.LinuxDevice{{
			Path: "/dev/gantry-full", Type: "c", Major: 1, Minor: 7,
			FileMode: &mode, UID: &uid, GID: &gid,
		}}
		major, minor := int64(1), int64(7)
		s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
			specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rw"})
		var cmds []string
		for _, d := range []string{"/dev/gantry-full", "/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"} {
			cmds = append(cmds, "/probe stat "+d)
		}
		cmds = append(cmds,
			"/probe try-open /dev/gantry-full rdwr",
			"/probe try-open /dev/null rdwr",
			"readlink /dev/fd", "readlink /dev/stdin", "readlink /dev/stdout",
			"readlink /dev/stderr", "readlink /dev/ptmx")
		s.Process.User = specs.User{UID: 1000, GID: 1000}
		s.Process.Args = []string{"/bin/sh", "-c", strings.Join(cmds, "; ")}
	})
	out := strings.Split(strings.TrimSpace(RunOutput(t, b)), "\n")
	want := []string{
		`{"mode":416,"type":"char","uid":1000,"gid":1001,"major":1,"minor":7,"size":0}`,
		`{"mode":438,"type":"char","uid":0,"gid":0,"major":1,"minor":3,"size":0}`,
		`{"mode":438,"type":"char","uid":0,"gid":0,"major":1,"minor":5,"size":0}`,
		`{"mode":438,"type":"char","uid":0,"gid":0,"major":1,"minor":7,"size":0}`,
		`{"mode":438,"type":"char","uid":0,"gid":0,"major":1,"minor":8,"size":0}`,
		`{"mode":438,"type":"char","uid":0,"gid":0,"major":1,"minor":9,"size":0}`,
		`{"mode":438,"type":"char","uid":0,"gid":0,"major":5,"minor":0,"size":0}`,
		"OK",
		"OK",
		"/proc/self/fd",
		"/proc/self/fd/0",
		"/proc/self/fd/1",
		"/proc/self/fd/2",
		"pts/ptmx",
	}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("devices:\n got %q\nwant %q", out, want)
	}
}

func TestDeviceCgroup(t *testing.T) {
	// 240:0 has no driver: an open the device cgroup allows fails with
	// ENXIO, one it denies with EPERM. The node comes from a host directory
	// bind-mounted into the container, so it is not in linux.devices (runc
	// and the spec's readers differ on whether listing a device allows it).
	dir := t.TempDir()
	if err := unix.Mknod(filepath.Join(dir, "nodriver"), unix.S_IFCHR|0o666, int(unix.Mkdev(240, 0))); err != nil {
		t.Fatalf("mknod: %v", err)
	}
	for _, tt := range []struct {
		name  string
		allow bool
		want  string
	}{
		{"denied", false, "EPERM"},
		{"allowed", true, "ENXIO"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := bundle.New(t, func(s *specs.Spec) {
				s.Mounts = append(s.Mounts, specs.Mount{Destination: "/hostdev", Type: "bind", Source: dir,
					Options: []string{"bind"}})
				if tt.allow {
					major, minor := int64(240), int64(0)
					s.Linux.Resources.Devices = append(s.Linux.Resources.Devices,
						specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: &major, Minor: &minor, Access: "rw"})
				}
				s.Process.Args = []string{"/probe", "try-open", "/hostdev/nodriver"}
			})
			if out := strings.TrimSpace(RunOutput(t, b)); out != tt.want {
				t.Errorf("open 240:0 = %s, want %s", out, tt.want)
			}
		})
	}
}

func TestSysctl(t *testing.T) {
	before, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	b := bundle.New(t, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		s.Process.Args = []string{"/probe", "report", "net.ipv4.ip_forward"}
	})
	r := RunBundle(t, b)
	if got := r.Sysctls["net.ipv4.ip_forward"]; got != "1" {
		t.Errorf("net.ipv4.ip_forward in the container = %q, want 1 (report errors: %q)", got, r.Errors)
	}
	after, err := os.ReadFile("/proc/sys/net/ipv4/ip_forward")
	if err != nil {
		t.Fatal(err)
	}
	if string(before) != string(after) {
		t.Errorf("host net.ipv4.ip_forward changed from %q to %q", before, after)
	}
}

func TestNoFDLeak(t *testing.T) {
	// An fd open in the caller without O_CLOEXEC must not reach the
	// container.
	fd, err := syscall.Open("/proc/self/status", syscall.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fd)
	b := bundle.New(t)
	r := RunBundle(t, b)
	var fds []int
	for fd := range r.FDs {
		fds = append(fds, fd)
	}
	sort.Ints(fds)
	if want := []int{0, 1, 2}; !reflect.DeepEqual(fds, want) {
		t.Errorf("open fds = %v (%v), want %v", fds, r.FDs, want)
	}
}

func TestSeccompErrno(t *testing.T) {
	errnoRet := uint(unix.EXDEV)
	b := bundle.New(t, func(s *specs.Spec) {
		s.Linux.Seccomp = &specs.LinuxSeccomp{
			DefaultAction: specs.ActAllow,
			Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &errnoRet},
				{Names: []string{"chmod"}, Action: specs.ActErrno}, // default errno: EPERM
			},
		}
		s.Process.Args = []string{"/bin/sh", "-c", strings.Join([]string{
			"/probe syscall mkdir", "/probe syscall mkdirat", "/probe syscall chmod",
			"/probe syscall getpid", "grep Seccomp: /proc/self/status",
		}, "; ")}
	})
	out := strings.Split(strings.TrimSpace(RunOutput(t, b)), "\n")
	for i := range out {
		out[i] = strings.Join(strings.Fields(out[i]), " ")
	}
	want := []string{"EXDEV", "EXDEV", "EPERM", "OK", "Seccomp: 2"}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("seccomp:\n got %q\nwant %q", out, want)
	}
}

func TestCgroupMemoryLimit(t *testing.T) {
	if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
		t.Skip("needs the cgroup v1 memory controller at /sys/fs/cgroup/memory")
	}
	limit := int64(64 << 20)
	b := bundle.New(t, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		s.Process.Args = []string{"/bin/sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes; grep :memory: /proc/self/cgroup"}
	})
	if _, stderr, code := Run(t, "create", "--bundle", b.Dir, b.ID); code != 0 {
		t.Fatalf("create: exit %d: %s", code, stderr)
	}
	hostFile := filepath.Join("/sys/fs/cgroup/memory", bundle.CgroupParent, b.ID, "memory.limit_in_bytes")
	got, err := os.ReadFile(hostFile)
	if err != nil {
		t.Fatalf("read the container's cgroup from the host: %v", err)
	}
	if strings.TrimSpace(string(got)) != "67108864" {
		t.Errorf("%s = %q, want 67108864", hostFile, got)
	}
	// The container sees its own cgroup and limit.
	b2 := bundle.New(t, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: &limit}
		s.Process.Args = []string{"/bin/sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes; grep :memory: /proc/self/cgroup"}
	})
	out := strings.Split(strings.TrimSpace(RunOutput(t, b2)), "\n")
	want := []string{"67108864", "4:memory:" + bundle.CgroupParent + "/" + b2.ID}
	if len(out) != 2 || out[0] != want[0] || !strings.HasSuffix(out[1], ":memory:"+bundle.CgroupParent+"/"+b2.ID) {
		t.Errorf("in the container:\n got %q\nwant %q", out, want)
	}
}
