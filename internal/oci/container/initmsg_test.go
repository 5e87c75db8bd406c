package container

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func fullInitConfig() *InitConfig {
	u32 := func(v uint32) *uint32 { return &v }
	n := func(v int) *int { return &v }
	un := func(v uint) *uint { return &v }
	mode := os.FileMode(0o620)
	hook := func(p string) []specs.Hook {
		return []specs.Hook{{Path: p, Args: []string{p, "a"}, Env: []string{"A=1"}, Timeout: n(5)}, {Path: p + "2"}}
	}
	return &InitConfig{
		ID: "c1", Bundle: "/b", Rootfs: "/b/rootfs",
		NoPivot: true, NoNewKeyring: true, NewMountNS: true, NewUserNS: true, NewCgroupNS: true, NewUTSNS: true, Exec: true,
		PreserveFDs: 2, FifoFD: 5, ConsoleFD: -1, ListenerFD: 7, Pid: 4242,
		Seccomp: []byte{1, 2, 3, 0},
		Spec: &specs.Spec{
			Version: "1.3.0",
			Process: &specs.Process{
				Terminal:    true,
				ConsoleSize: &specs.Box{Height: 24, Width: 80},
				User:        specs.User{UID: 1000, GID: 1001, Umask: u32(0o22), AdditionalGids: []uint32{5, 6}, Username: "u"},
				Args:        []string{"/bin/sh", "-c", "echo ü"},
				CommandLine: "cmd",
				Env:         []string{"PATH=/bin", "X="},
				Cwd:         "/tmp",
				Capabilities: &specs.LinuxCapabilities{
					Bounding: []string{"CAP_KILL"}, Effective: []string{"CAP_CHOWN"}, Inheritable: []string{"CAP_FOWNER"},
					Permitted: []string{"CAP_KILL", "CAP_CHOWN"}, Ambient: []string{"CAP_NET_RAW"},
				},
				Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1 << 40, Soft: 1024}},
				NoNewPrivileges: true,
				ApparmorProfile: "prof",
				OOMScoreAdj:     n(-17),
				Scheduler: &specs.Scheduler{Policy: "SCHED_DEADLINE", Nice: -5, Priority: 3,
					Flags: []specs.LinuxSchedulerFlag{"SCHED_FLAG_RESET_ON_FORK"}, Runtime: 1, Deadline: 2, Period: 3},
				SelinuxLabel:    "label",
				IOPriority:      &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_BE", Priority: 4},
				ExecCPUAffinity: &specs.CPUAffinity{Initial: "0", Final: "1"},
			},
			Root:       &specs.Root{Path: "rootfs", Readonly: true},
			Hostname:   "h",
			Domainname: "d",
			Mounts: []specs.Mount{
				{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid"},
					UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
					GIDMappings: []specs.LinuxIDMapping{{ContainerID: 1, HostID: 2000, Size: 65536}}},
				{Destination: "/x"},
			},
			Hooks: &specs.Hooks{
				Prestart: hook("/pre"), CreateRuntime: hook("/cr"), CreateContainer: hook("/cc"),
				StartContainer: hook("/sc"), Poststart: hook("/ps"), Poststop: hook("/stop"),
			},
			Annotations: map[string]string{"a": "1", "b": ""},
			Linux: &specs.Linux{
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}},
				GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 200000, Size: 65536}},
				Sysctl:      map[string]string{"net.ipv4.ip_forward": "1"},
				CgroupsPath: "/g/c1",
				Namespaces:  []specs.LinuxNamespace{{Type: "network", Path: "/proc/1/ns/net"}, {Type: "pid"}},
				Devices: []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229,
					FileMode: &mode, UID: u32(0), GID: u32(5)}},
				Seccomp: &specs.LinuxSeccomp{
					DefaultAction: "SCMP_ACT_ERRNO", DefaultErrnoRet: un(1),
					Architectures: []specs.Arch{"SCMP_ARCH_X86_64"}, Flags: []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_LOG"},
					ListenerPath: "/run/l.sock", ListenerMetadata: "meta",
					Syscalls: []specs.LinuxSyscall{{Names: []string{"read"}, Action: "SCMP_ACT_ALLOW", ErrnoRet: un(2),
						Args: []specs.LinuxSeccompArg{{Index: 1, Value: 2, ValueTwo: 3, Op: "SCMP_CMP_EQ"}}}},
				},
				RootfsPropagation: "rslave",
				MaskedPaths:       []string{"/proc/kcore"},
				ReadonlyPaths:     []string{"/proc/sys"},
				MountLabel:        "ml",
				Personality:       &specs.LinuxPersonality{Domain: "LINUX32", Flags: []specs.LinuxPersonalityFlag{"f"}},
			},
		},
	}
}

// notCarried are the fields the init never reads (initmsg.go says why).
var notCarried = map[string]bool{
	"Spec.Solaris": true, "Spec.Windows": true, "Spec.VM": true, "Spec.ZOS": true, "Spec.FreeBSD": true,
	"Linux.Resources": true, "Linux.NetDevices": true, "Linux.IntelRdt": true,
	"Linux.MemoryPolicy": true, "Linux.TimeOffsets": true,
}

// checkAllSet fails for every field of v (recursively) that is zero in the
// fixture (in the first element of a list) and not in notCarried: a field the runtime-spec adds fails here
// until the codec carries it or it is listed as not carried.
func checkAllSet(t *testing.T, v reflect.Value, path string) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			checkAllSet(t, v.Elem(), path)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Struct && v.Len() > 0 {
			checkAllSet(t, v.Index(0), path+"[0]")
		}
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			name := v.Type().Name() + "." + f.Name
			if notCarried[name] {
				continue
			}
			fv := v.Field(i)
			if fv.IsZero() && !(f.Type.Kind() == reflect.Bool || f.Type.Kind() == reflect.Uint32 || f.Type.Kind() == reflect.Int) {
				t.Errorf("fixture: %s.%s is zero: carry it in initmsg.go or list it in notCarried", path, f.Name)
			}
			checkAllSet(t, fv, path+"."+f.Name)
		}
	}
}

func TestInitConfigRoundTrip(t *testing.T) {
	want := fullInitConfig()
	checkAllSet(t, reflect.ValueOf(want.Spec), "spec")

	// Fields that are not carried are dropped.
	in := fullInitConfig()
	in.Spec.Linux.Resources = &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: new(int64)}}
	in.Spec.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 1}}
	var buf bytes.Buffer
	if err := send(&buf, message{Type: msgConfig, Config: in}); err != nil {
		t.Fatal(err)
	}
	if err := send(&buf, message{Type: msgReady}); err != nil {
		t.Fatal(err)
	}
	m, err := expect(&buf, msgConfig)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m.Config, want) {
		got, _ := json.Marshal(m.Config)
		exp, _ := json.Marshal(want)
		t.Errorf("round trip:\n got %s\nwant %s", got, exp)
	}
	if _, err := expect(&buf, msgReady); err != nil {
		t.Errorf("second frame: %v", err)
	}

	// nil and empty mounts stay apart; empty lists decode as nil.
	for _, mounts := range [][]specs.Mount{nil, {}} {
		cfg := &InitConfig{Spec: &specs.Spec{Mounts: mounts, Process: &specs.Process{Args: []string{}}}}
		buf.Reset()
		if err := send(&buf, message{Type: msgConfig, Config: cfg}); err != nil {
			t.Fatal(err)
		}
		m, err := expect(&buf, msgConfig)
		if err != nil {
			t.Fatal(err)
		}
		if (m.Config.Spec.Mounts == nil) != (mounts == nil) {
			t.Errorf("mounts %#v decoded as %#v", mounts, m.Config.Spec.Mounts)
		}
		if m.Config.Spec.Process.Args != nil {
			t.Errorf("empty args decoded as %#v", m.Config.Spec.Process.Args)
		}
	}
}

func TestInitMessageError(t *testing.T) {
	var buf bytes.Buffer
	if err := send(&buf, message{Type: msgError, Error: "mount /proc: EPERM"}); err != nil {
		t.Fatal(err)
	}
	_, err := expect(&buf, msgReady)
	if err == nil || err.Error() != "mount /proc: EPERM" {
		t.Errorf("error message: got %v", err)
	}
	if err := send(&buf, message{Type: "bogus"}); err == nil {
		t.Error("unknown type: no error")
	}
	if _, err := expect(&buf, msgReady); err == nil || !strings.Contains(err.Error(), "exited before") {
		t.Errorf("empty stream: got %v", err)
	}
}

// Every truncation and a corrupted length fail with an error, never a
// panic or a partial config.
func TestInitMessageMalformed(t *testing.T) {
	var buf bytes.Buffer
	if err := send(&buf, message{Type: msgConfig, Config: fullInitConfig()}); err != nil {
		t.Fatal(err)
	}
	frame := buf.Bytes()
	for n := 0; n < len(frame); n++ {
		if _, err := readFrame(bytes.NewReader(frame[:n])); err == nil {
			t.Fatalf("frame cut at %d of %d bytes: no error", n, len(frame))
		}
	}
	// The same body with a shorter declared length: the decoder runs out.
	for cut := 1; cut < len(frame)-4; cut += 7 {
		b := append([]byte(nil), frame[:4+cut]...)
		binary.LittleEndian.PutUint32(b, uint32(cut))
		if m, err := readFrame(bytes.NewReader(b)); err == nil {
			t.Fatalf("body cut to %d bytes: decoded %+v", cut, m)
		}
	}
	// Trailing bytes are an error too.
	b := append(append([]byte(nil), frame...), 0)
	binary.LittleEndian.PutUint32(b, uint32(len(b)-4))
	if _, err := readFrame(bytes.NewReader(b)); err == nil {
		t.Error("trailing byte: no error")
	}
	huge := []byte{0xff, 0xff, 0xff, 0xff}
	if _, err := readFrame(bytes.NewReader(huge)); err == nil {
		t.Error("4 GiB length: no error")
	}
	if _, err := readFrame(bytes.NewReader([]byte{0, 0, 0, 0})); err == nil {
		t.Error("empty frame: no error")
	}
	if m, err := readFrame(bytes.NewReader([]byte{1, 0, 0, 0, 0x7f})); err == nil {
		t.Errorf("type byte 0x7f: decoded %+v", m)
	}
	if err := send(&bytes.Buffer{}, message{Type: msgConfig}); err == nil {
		t.Error("config message without a config: sent")
	}
}
