package specgen

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

var testRootfs = MapLookup{
	"/etc/passwd": []byte(`# comment
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:100::/home/bob:/bin/sh
broken line
nohome:x:1002:1002
`),
	"/etc/group": []byte(`root:x:0:
daemon:x:1:
users:x:100:alice
alice:x:1000:
wheel:x:10:alice,bob
audio:x:29:bob , alice
`),
}

func TestResolveUser(t *testing.T) {
	tests := []struct {
		user    string
		lookup  RootfsLookup
		want    ExecUser
		wantErr error
	}{
		{user: "", want: ExecUser{UID: 0, GID: 0, Home: "/root"}},
		{user: "root", want: ExecUser{UID: 0, GID: 0, Home: "/root"}},
		{user: "alice", want: ExecUser{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 10, 29}, Home: "/home/alice"}},
		{user: "1000", want: ExecUser{UID: 1000, GID: 1000, AdditionalGids: []uint32{100, 10, 29}, Home: "/home/alice"}},
		{user: "bob", want: ExecUser{UID: 1001, GID: 100, AdditionalGids: []uint32{10, 29}, Home: "/home/bob"}},
		{user: "1001:1001", want: ExecUser{UID: 1001, GID: 1001, AdditionalGids: []uint32{10, 29}, Home: "/home/bob"}},
		{user: "alice:wheel", want: ExecUser{UID: 1000, GID: 10, AdditionalGids: []uint32{100, 29}, Home: "/home/alice"}},
		{user: "alice:5", want: ExecUser{UID: 1000, GID: 5, AdditionalGids: []uint32{100, 10, 29}, Home: "/home/alice"}},
		{user: "4242:users", want: ExecUser{UID: 4242, GID: 100, Home: "/"}},
		{user: "4242", want: ExecUser{UID: 4242, GID: 0, Home: "/"}},
		{user: "4242:4343", want: ExecUser{UID: 4242, GID: 4343, Home: "/"}},
		{user: "nohome", want: ExecUser{UID: 1002, GID: 1002, Home: "/"}},
		{user: "4242:4343", lookup: MapLookup{}, want: ExecUser{UID: 4242, GID: 4343, Home: "/"}},
		{user: "", lookup: MapLookup{}, want: ExecUser{Home: "/"}},
		{user: "mallory", wantErr: errdefs.ErrInvalidArgument},
		{user: "alice:nogroup", wantErr: errdefs.ErrInvalidArgument},
		{user: "root", lookup: MapLookup{}, wantErr: errdefs.ErrInvalidArgument},
		{user: "alice:", wantErr: errdefs.ErrInvalidArgument},
		{user: ":10", wantErr: errdefs.ErrInvalidArgument},
		{user: "-1", wantErr: errdefs.ErrInvalidArgument},
		{user: "4294967296", wantErr: errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			lookup := tt.lookup
			if lookup == nil {
				lookup = testRootfs
			}
			got, err := ResolveUser(tt.user, lookup)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.UID != tt.want.UID || got.GID != tt.want.GID || got.Home != tt.want.Home || !slices.Equal(got.AdditionalGids, tt.want.AdditionalGids) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestDirLookupStaysInRoot(t *testing.T) {
	root := t.TempDir()
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("alice:x:0:0::/:/bin/sh\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	// An absolute symlink in the image points at a host file.
	if err := os.Symlink(outside, filepath.Join(root, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	if _, err := DirLookup(root).ReadFile("/etc/passwd"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("read through escaping symlink: %v, want not exist", err)
	}
	os.Remove(filepath.Join(root, "etc", "passwd"))
	os.WriteFile(filepath.Join(root, "etc", "passwd"), []byte("alice:x:7:8::/a:/bin/sh\n"), 0o644)
	u, err := ResolveUser("alice", DirLookup(root))
	if err != nil || u.UID != 7 || u.GID != 8 {
		t.Fatalf("got %+v, %v", u, err)
	}
}

func TestArgs(t *testing.T) {
	tests := []struct {
		name       string
		entrypoint []string
		cmd        []string
		opts       Options
		want       []string
		wantErr    bool
	}{
		{name: "entrypoint+cmd", entrypoint: []string{"/ep", "-x"}, cmd: []string{"a", "b"}, want: []string{"/ep", "-x", "a", "b"}},
		{name: "cmd only", cmd: []string{"/bin/sh", "-c", "true"}, want: []string{"/bin/sh", "-c", "true"}},
		{name: "entrypoint only", entrypoint: []string{"/ep"}, want: []string{"/ep"}},
		{name: "args replace cmd", entrypoint: []string{"/ep"}, cmd: []string{"a"}, opts: Options{Args: []string{"b", "c"}}, want: []string{"/ep", "b", "c"}},
		{name: "--entrypoint resets cmd", entrypoint: []string{"/ep"}, cmd: []string{"a"}, opts: Options{Entrypoint: []string{"/other"}}, want: []string{"/other"}},
		{name: "--entrypoint with args", entrypoint: []string{"/ep"}, cmd: []string{"a"}, opts: Options{Entrypoint: []string{"/other"}, Args: []string{"x"}}, want: []string{"/other", "x"}},
		{name: "--entrypoint '' with args", entrypoint: []string{"/ep"}, cmd: []string{"a"}, opts: Options{Entrypoint: []string{}, Args: []string{"/bin/true"}}, want: []string{"/bin/true"}},
		{name: "--entrypoint '' alone", entrypoint: []string{"/ep"}, cmd: []string{"a"}, opts: Options{Entrypoint: []string{}}, wantErr: true},
		{name: "nothing", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := ocispec.Image{Config: ocispec.ImageConfig{Entrypoint: tt.entrypoint, Cmd: tt.cmd}}
			spec, err := Generate(img, testRootfs, tt.opts)
			if tt.wantErr {
				if !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want ErrInvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(spec.Process.Args, tt.want) {
				t.Fatalf("args = %q, want %q", spec.Process.Args, tt.want)
			}
		})
	}
}

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		if _, dup := m[k]; dup {
			m[k] = "DUPLICATE"
			continue
		}
		m[k] = v
	}
	return m
}

func TestEnv(t *testing.T) {
	img := ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"sh"}, User: "alice",
		Env: []string{"PATH=/img/bin", "A=1", "B=2", "C=3"}}}
	spec, err := Generate(img, testRootfs, Options{Env: []string{"B=two", "D=4", "C", "E=x=y"}, Tty: true, Hostname: "box"})
	if err != nil {
		t.Fatal(err)
	}
	got := envMap(spec.Process.Env)
	want := map[string]string{"PATH": "/img/bin", "A": "1", "B": "two", "D": "4", "E": "x=y",
		"HOME": "/home/alice", "TERM": "xterm", "HOSTNAME": "box"}
	if len(got) != len(want) {
		t.Fatalf("env = %q, want %v", spec.Process.Env, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("env %s = %q, want %q (env %q)", k, got[k], v, spec.Process.Env)
		}
	}
	// Image order kept, new keys appended.
	if spec.Process.Env[0] != "PATH=/img/bin" || spec.Process.Env[1] != "A=1" {
		t.Errorf("order: %q", spec.Process.Env)
	}

	spec, err = Generate(ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"sh"}}}, nil, Options{Env: []string{"HOME=/h"}})
	if err != nil {
		t.Fatal(err)
	}
	got = envMap(spec.Process.Env)
	if got["PATH"] != DefaultPath || got["HOME"] != "/h" || got["TERM"] != "" {
		t.Errorf("defaults: %q", spec.Process.Env)
	}
	if _, err := Generate(ocispec.Image{Config: ocispec.ImageConfig{Cmd: []string{"sh"}}}, nil, Options{Env: []string{"=x"}}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("empty env name: %v", err)
	}
}

func defaultImage() ocispec.Image {
	return ocispec.Image{
		Platform: ocispec.Platform{OS: "linux", Architecture: "amd64"},
		Config: ocispec.ImageConfig{
			Cmd:        []string{"/bin/sh"},
			WorkingDir: "/work",
			User:       "bob",
			StopSignal: "SIGQUIT",
			Labels:     map[string]string{"org.example.team": "infra"},
			Volumes:    map[string]struct{}{"/data": {}, "/var/log/": {}},
			ExposedPorts: map[string]struct{}{
				"80/tcp": {},
			},
		},
	}
}

// roundTrip marshals the spec as config.json and reads it back, so tests
// check what a runtime would read.
func roundTrip(t *testing.T, s *specs.Spec) *specs.Spec {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out specs.Spec
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

func nsTypes(s *specs.Spec) []specs.LinuxNamespaceType {
	var out []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		if n.Path != "" {
			continue
		}
		out = append(out, n.Type)
	}
	return out
}

func TestDefaults(t *testing.T) {
	spec, err := Generate(defaultImage(), testRootfs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := roundTrip(t, spec)
	if s.Version != specs.Version || s.Root.Path != "rootfs" || s.Root.Readonly {
		t.Errorf("root/version: %+v %q", s.Root, s.Version)
	}
	p := s.Process
	if p.Cwd != "/work" || p.User.UID != 1001 || p.User.GID != 100 || p.Terminal || p.NoNewPrivileges {
		t.Errorf("process: %+v", p)
	}
	if got, want := slices.Sorted(slices.Values(p.Capabilities.Bounding)), slices.Sorted(slices.Values(DefaultCapabilities)); !slices.Equal(got, want) {
		t.Errorf("bounding = %v, want %v", got, want)
	}
	for _, c := range DefaultCapabilities {
		for name, set := range map[string][]string{"bounding": p.Capabilities.Bounding, "effective": p.Capabilities.Effective, "permitted": p.Capabilities.Permitted} {
			if !slices.Contains(set, c) {
				t.Errorf("%s lacks %s", name, c)
			}
		}
	}
	if len(p.Capabilities.Bounding) != 14 || slices.Contains(p.Capabilities.Bounding, "CAP_SYS_ADMIN") || len(p.Capabilities.Inheritable) != 0 || len(p.Capabilities.Ambient) != 0 {
		t.Errorf("capabilities: %+v", p.Capabilities)
	}
	if len(p.Rlimits) != 1 || p.Rlimits[0].Type != "RLIMIT_NOFILE" || p.Rlimits[0].Hard != 1024 || p.Rlimits[0].Soft != 1024 {
		t.Errorf("rlimits: %+v", p.Rlimits)
	}
	wantNS := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.MountNamespace, specs.NetworkNamespace, specs.CgroupNamespace}
	if !slices.Equal(nsTypes(s), wantNS) {
		t.Errorf("namespaces = %v", nsTypes(s))
	}
	for dst, typ := range map[string]string{"/proc": "proc", "/dev": "tmpfs", "/dev/pts": "devpts", "/dev/shm": "tmpfs", "/dev/mqueue": "mqueue", "/sys": "sysfs", "/sys/fs/cgroup": "cgroup"} {
		m := mountAt(s, dst)
		if m == nil || m.Type != typ {
			t.Errorf("mount %s: %+v, want type %s", dst, m, typ)
		}
	}
	if m := mountAt(s, "/sys"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys not read-only: %+v", m)
	}
	if m := mountAt(s, "/sys/fs/cgroup"); m == nil || !slices.Contains(m.Options, "ro") {
		t.Errorf("/sys/fs/cgroup not read-only: %+v", m)
	}
	for _, mp := range []string{"/proc/kcore", "/proc/keys", "/sys/firmware", "/proc/timer_list"} {
		if !slices.Contains(s.Linux.MaskedPaths, mp) {
			t.Errorf("%s not masked", mp)
		}
	}
	for _, rp := range []string{"/proc/sys", "/proc/sysrq-trigger", "/proc/bus"} {
		if !slices.Contains(s.Linux.ReadonlyPaths, rp) {
			t.Errorf("%s not read-only", rp)
		}
	}
	sc := s.Linux.Seccomp
	if sc == nil || sc.DefaultAction != specs.ActErrno || sc.DefaultErrnoRet == nil || *sc.DefaultErrnoRet != 1 {
		t.Fatalf("seccomp: %+v", sc)
	}
	ann := s.Annotations
	if ann[AnnotationStopSignal] != "SIGQUIT" || ann["org.example.team"] != "infra" || ann[AnnotationVolumes] != `["/data","/var/log"]` {
		t.Errorf("annotations = %v", ann)
	}
	if r := s.Linux.Resources; r == nil || len(r.Devices) == 0 || r.Devices[0].Allow || r.Memory != nil || r.CPU != nil || r.Pids != nil {
		t.Errorf("resources = %+v", r)
	}
}

func seccompRule(sc *specs.LinuxSeccomp, name string) []specs.LinuxSyscall {
	var out []specs.LinuxSyscall
	for _, r := range sc.Syscalls {
		if slices.Contains(r.Names, name) {
			out = append(out, r)
		}
	}
	return out
}

func TestSeccompProfile(t *testing.T) {
	spec, err := Generate(defaultImage(), testRootfs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sc := spec.Linux.Seccomp
	if len(sc.Architectures) == 0 {
		t.Error("no architectures")
	}
	for _, name := range []string{"read", "write", "openat", "execve", "futex", "rt_sigaction", "mmap", "exit_group", "chroot", "statx", "getrandom", "wait4", "epoll_pwait"} {
		rules := seccompRule(sc, name)
		if len(rules) != 1 || rules[0].Action != specs.ActAllow || len(rules[0].Args) != 0 {
			t.Errorf("%s: rules %+v, want one unconditional allow", name, rules)
		}
	}
	for _, name := range []string{"mount", "umount2", "setns", "unshare", "bpf", "kexec_load", "reboot", "init_module", "open_by_handle_at", "keyctl"} {
		if rules := seccompRule(sc, name); len(rules) != 0 {
			t.Errorf("%s allowed without its capability: %+v", name, rules)
		}
	}
	clone := seccompRule(sc, "clone")
	if len(clone) != 1 || len(clone[0].Args) != 1 || clone[0].Args[0].Op != specs.OpMaskedEqual || clone[0].Args[0].Value != cloneNamespaceFlags || clone[0].Args[0].ValueTwo != 0 {
		t.Errorf("clone rule = %+v", clone)
	}
	clone3 := seccompRule(sc, "clone3")
	if len(clone3) != 1 || clone3[0].Action != specs.ActErrno || clone3[0].ErrnoRet == nil || *clone3[0].ErrnoRet != 38 {
		t.Errorf("clone3 rule = %+v", clone3)
	}
	// No syscall is both allowed and refused: libseccomp rejects that.
	actions := map[string]specs.LinuxSeccompAction{}
	for _, r := range sc.Syscalls {
		for _, n := range r.Names {
			if a, ok := actions[n]; ok && a != r.Action {
				t.Errorf("%s has actions %s and %s", n, a, r.Action)
			}
			actions[n] = r.Action
		}
	}

	// CAP_SYS_ADMIN opens mount, setns and unfiltered clone.
	spec, err = Generate(defaultImage(), testRootfs, Options{CapAdd: []string{"sys_admin"}})
	if err != nil {
		t.Fatal(err)
	}
	sc = spec.Linux.Seccomp
	for _, name := range []string{"mount", "setns", "unshare", "clone", "clone3"} {
		rules := seccompRule(sc, name)
		if len(rules) != 1 || rules[0].Action != specs.ActAllow || len(rules[0].Args) != 0 {
			t.Errorf("with CAP_SYS_ADMIN %s: %+v", name, rules)
		}
	}
	// Dropping SYS_CHROOT drops chroot.
	spec, _ = Generate(defaultImage(), testRootfs, Options{CapDrop: []string{"CAP_SYS_CHROOT"}})
	if rules := seccompRule(spec.Linux.Seccomp, "chroot"); len(rules) != 0 {
		t.Errorf("chroot allowed without CAP_SYS_CHROOT")
	}
}

func TestCapabilities(t *testing.T) {
	tests := []struct {
		add, drop []string
		has       []string
		hasNot    []string
		n         int
		wantErr   bool
	}{
		{n: 14, has: []string{"CAP_CHOWN", "CAP_KILL"}},
		{add: []string{"NET_ADMIN"}, n: 15, has: []string{"CAP_NET_ADMIN"}},
		{add: []string{"cap_sys_ptrace"}, drop: []string{"net_raw", "MKNOD"}, n: 13, has: []string{"CAP_SYS_PTRACE"}, hasNot: []string{"CAP_NET_RAW", "CAP_MKNOD"}},
		{drop: []string{"ALL"}, add: []string{"CHOWN"}, n: 1, has: []string{"CAP_CHOWN"}},
		{drop: []string{"all"}, n: 0},
		{add: []string{"ALL"}, drop: []string{"SYS_ADMIN"}, n: len(AllCapabilities) - 1, hasNot: []string{"CAP_SYS_ADMIN"}},
		{add: []string{"KILL"}, drop: []string{"KILL"}, n: 14, has: []string{"CAP_KILL"}},
		{add: []string{"CAP_BOGUS"}, wantErr: true},
		{drop: []string{"nope"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := Capabilities(tt.add, tt.drop)
		if tt.wantErr {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("add %v drop %v: err %v, want ErrInvalidArgument", tt.add, tt.drop, err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != tt.n {
			t.Errorf("add %v drop %v: %d caps %v, want %d", tt.add, tt.drop, len(got), got, tt.n)
		}
		for _, c := range tt.has {
			if !slices.Contains(got, c) {
				t.Errorf("add %v drop %v: lacks %s", tt.add, tt.drop, c)
			}
		}
		for _, c := range tt.hasNot {
			if slices.Contains(got, c) {
				t.Errorf("add %v drop %v: has %s", tt.add, tt.drop, c)
			}
		}
	}
}

func TestPrivileged(t *testing.T) {
	spec, err := Generate(defaultImage(), testRootfs, Options{Privileged: true, CapDrop: []string{"ALL"}})
	if err != nil {
		t.Fatal(err)
	}
	s := roundTrip(t, spec)
	if len(s.Process.Capabilities.Bounding) != len(AllCapabilities) || len(s.Process.Capabilities.Effective) != len(AllCapabilities) {
		t.Errorf("privileged caps = %v", s.Process.Capabilities.Bounding)
	}
	if s.Linux.Seccomp != nil {
		t.Error("privileged has a seccomp profile")
	}
	if len(s.Linux.MaskedPaths) != 0 || len(s.Linux.ReadonlyPaths) != 0 {
		t.Errorf("privileged masked %v readonly %v", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	if m := mountAt(s, "/sys"); m == nil || slices.Contains(m.Options, "ro") {
		t.Errorf("privileged /sys: %+v", m)
	}
	if d := s.Linux.Resources.Devices; len(d) != 1 || !d[0].Allow || d[0].Access != "rwm" {
		t.Errorf("privileged devices = %+v", d)
	}
}

func TestOptions(t *testing.T) {
	bind := specs.Mount{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "ro"}}
	shm := specs.Mount{Destination: "/dev/shm/", Type: "tmpfs", Source: "shm", Options: []string{"size=1g"}}
	spec, err := Generate(defaultImage(), testRootfs, Options{
		ReadOnly: true, User: "1000:10", Cwd: "/tmp", Tty: true, Hostname: "h1",
		Memory: 256 << 20, CPUs: 1.5, PidsLimit: 100, NetworkMode: "host",
		Mounts: []specs.Mount{bind, shm}, Annotations: map[string]string{"org.example.team": "web"},
		RootPath: "/var/lib/gantry/rootfs",
	})
	if err != nil {
		t.Fatal(err)
	}
	s := roundTrip(t, spec)
	if !s.Root.Readonly || s.Root.Path != "/var/lib/gantry/rootfs" {
		t.Errorf("root = %+v", s.Root)
	}
	if s.Process.User.UID != 1000 || s.Process.User.GID != 10 || s.Process.Cwd != "/tmp" || !s.Process.Terminal || s.Hostname != "h1" {
		t.Errorf("process = %+v hostname %q", s.Process, s.Hostname)
	}
	if slices.Contains(nsTypes(s), specs.NetworkNamespace) {
		t.Error("host network still has a network namespace")
	}
	r := s.Linux.Resources
	if r.Memory == nil || *r.Memory.Limit != 256<<20 || r.CPU == nil || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != 100 {
		t.Errorf("resources = %+v", r)
	}
	if m := mountAt(s, "/data"); m == nil || m.Source != "/srv/data" {
		t.Errorf("bind mount: %+v", m)
	}
	n := 0
	for _, m := range s.Mounts {
		if strings.TrimSuffix(m.Destination, "/") == "/dev/shm" {
			n++
			if !slices.Contains(m.Options, "size=1g") {
				t.Errorf("/dev/shm not replaced: %+v", m)
			}
		}
	}
	if n != 1 {
		t.Errorf("%d mounts on /dev/shm, want 1", n)
	}
	if s.Annotations["org.example.team"] != "web" {
		t.Errorf("annotation override: %v", s.Annotations)
	}

	for name, o := range map[string]Options{
		"network": {NetworkMode: "bridge"},
		"memory":  {Memory: -1},
		"1k":      {Memory: 1 << 10},
		"<6MB":    {Memory: MinMemory - 1},
		"cpus":    {CPUs: 0.001},
		"cwd":     {Cwd: "relative"},
		"mount":   {Mounts: []specs.Mount{{Destination: "data"}}},
		"user":    {User: "nobody-here"},
		"cap":     {CapAdd: []string{"FLY"}},
	} {
		if _, err := Generate(defaultImage(), testRootfs, o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err %v, want ErrInvalidArgument", name, err)
		}
	}
}

func TestResourceLimits(t *testing.T) {
	for _, tt := range []struct {
		name         string
		opts         Options
		memory, pids int64 // 0: none set
	}{
		{"the minimum memory", Options{Memory: MinMemory}, MinMemory, 0},
		// docker: 0 and -1 (any negative) mean no pids limit.
		{"pids -1", Options{PidsLimit: -1}, 0, 0},
		{"pids 0", Options{PidsLimit: 0}, 0, 0},
		{"pids 1", Options{PidsLimit: 1}, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec, err := Generate(defaultImage(), testRootfs, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			r := roundTrip(t, spec).Linux.Resources
			switch {
			case tt.memory == 0 && r.Memory != nil, tt.memory != 0 && (r.Memory == nil || *r.Memory.Limit != tt.memory):
				t.Errorf("memory = %+v, want limit %d", r.Memory, tt.memory)
			case tt.pids == 0 && r.Pids != nil, tt.pids != 0 && (r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != tt.pids):
				t.Errorf("pids = %+v, want limit %d", r.Pids, tt.pids)
			}
		})
	}
	_, err := Generate(defaultImage(), testRootfs, Options{Memory: 1 << 10})
	if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "6MB") {
		t.Errorf("memory 1k: err %v, want invalid argument naming the 6MB minimum", err)
	}
}

func TestTmpfsOptions(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{nil, []string{"noexec", "nosuid", "nodev"}},
		// gantryd's --tmpfs options, then the user's after the colon.
		{[]string{"nosuid", "nodev", "mode=1777"}, []string{"noexec", "nosuid", "nodev", "mode=1777"}},
		{[]string{"nosuid", "nodev", "mode=1777", "exec", "size=1m"}, []string{"nosuid", "nodev", "mode=1777", "exec", "size=1m"}},
		{[]string{"suid", "dev", "ro"}, []string{"noexec", "suid", "dev", "ro"}},
		{[]string{"size=1m", "size=2m", "mode=700"}, []string{"noexec", "nosuid", "nodev", "size=2m", "mode=700"}},
	} {
		if got := TmpfsOptions(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("TmpfsOptions(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestTmpfsMount(t *testing.T) {
	spec, err := Generate(defaultImage(), testRootfs, Options{Mounts: []specs.Mount{
		{Destination: "/x", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777"}},
		{Destination: "/y", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "nodev", "mode=1777", "exec", "size=1m"}},
		{Destination: "/data", Type: "bind", Source: "/srv/data", Options: []string{"rbind", "rw"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	s := roundTrip(t, spec)
	if m := mountAt(s, "/x"); m == nil || !slices.Contains(m.Options, "noexec") || slices.ContainsFunc(m.Options, func(o string) bool { return strings.HasPrefix(o, "size=") }) {
		t.Errorf("--tmpfs /x: %+v, want noexec and no size", m)
	}
	if m := mountAt(s, "/y"); m == nil || slices.Contains(m.Options, "noexec") || !slices.Contains(m.Options, "exec") || !slices.Contains(m.Options, "size=1m") {
		t.Errorf("--tmpfs /y:exec,size=1m: %+v, want exec and size=1m", m)
	}
	if m := mountAt(s, "/data"); m == nil || !slices.Equal(m.Options, []string{"rbind", "rw"}) {
		t.Errorf("a bind mount got tmpfs options: %+v", m)
	}
	// The default /dev/shm is not one of the user's: it keeps its options.
	if m := mountAt(s, "/dev/shm"); m == nil || !slices.Contains(m.Options, "size=65536k") {
		t.Errorf("/dev/shm: %+v", m)
	}
}

func TestInit(t *testing.T) {
	const initBin = "/usr/local/bin/gantry-init"
	tests := []struct {
		name       string
		entrypoint []string
		cmd        []string
		opts       Options
		want       []string
	}{
		{name: "cmd", cmd: []string{"sh"}, opts: Options{Init: initBin}, want: []string{InitPath, "--", "sh"}},
		{name: "entrypoint+cmd", entrypoint: []string{"/ep", "-x"}, cmd: []string{"a"}, opts: Options{Init: initBin}, want: []string{InitPath, "--", "/ep", "-x", "a"}},
		{name: "args", cmd: []string{"sh"}, opts: Options{Init: initBin, Args: []string{"sleep", "1000"}}, want: []string{InitPath, "--", "sleep", "1000"}},
		{name: "command starting with a dash", cmd: []string{"sh"}, opts: Options{Init: initBin, Args: []string{"--", "-x"}}, want: []string{InitPath, "--", "--", "-x"}},
		{name: "without init", cmd: []string{"sh"}, opts: Options{Args: []string{"sleep", "1"}}, want: []string{"sleep", "1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := ocispec.Image{Config: ocispec.ImageConfig{Entrypoint: tt.entrypoint, Cmd: tt.cmd}}
			spec, err := Generate(img, testRootfs, tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			s := roundTrip(t, spec)
			if !slices.Equal(s.Process.Args, tt.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tt.want)
			}
			m := mountAt(s, InitPath)
			if tt.opts.Init == "" {
				if m != nil {
					t.Errorf("mount at %s without init: %+v", InitPath, m)
				}
				return
			}
			if m == nil {
				t.Fatalf("no mount at %s in %+v", InitPath, s.Mounts)
			}
			if m.Type != "bind" || m.Source != initBin || !slices.Contains(m.Options, "ro") || slices.Contains(m.Options, "rw") || slices.Contains(m.Options, "noexec") {
				t.Errorf("init mount = %+v, want a read-only, executable bind of %s", m, initBin)
			}
			if last := s.Mounts[len(s.Mounts)-1]; last.Destination != InitPath {
				t.Errorf("last mount is %s, want the init's (after the user's mounts)", last.Destination)
			}
		})
	}
	// A user's mount on the same path comes first: the init's is mounted over it.
	spec, err := Generate(defaultImage(), testRootfs, Options{Init: initBin,
		Mounts: []specs.Mount{{Destination: InitPath, Type: "bind", Source: "/tmp/evil", Options: []string{"rbind", "rw"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if last := spec.Mounts[len(spec.Mounts)-1]; last.Destination != InitPath || last.Source != initBin {
		t.Errorf("last mount = %+v, want the init's", last)
	}
	for name, o := range map[string]Options{
		"relative init":          {Init: "bin/gantry-init"},
		"init without a command": {Init: initBin, Entrypoint: []string{}},
	} {
		img := ocispec.Image{}
		if _, err := Generate(img, testRootfs, o); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: err %v, want ErrInvalidArgument", name, err)
		}
	}
}
