package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// newBundle makes a bundle dir with an empty rootfs and returns it with a
// valid spec for it (the example config).
func newBundle(t *testing.T) (*specs.Spec, string) {
	t.Helper()
	bundle := t.TempDir()
	if err := os.Mkdir(filepath.Join(bundle, "rootfs"), 0o755); err != nil {
		t.Fatal(err)
	}
	return Example(), bundle
}

func ptr[T any](v T) *T { return &v }

// withNS adds a namespace entry of type typ to s.
func withNS(s *specs.Spec, typ specs.LinuxNamespaceType, path string) {
	for i, n := range s.Linux.Namespaces {
		if n.Type == typ {
			s.Linux.Namespaces[i].Path = path
			return
		}
	}
	s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: typ, Path: path})
}

// withoutNS removes the namespace entry of type typ from s.
func withoutNS(s *specs.Spec, typ specs.LinuxNamespaceType) {
	var out []specs.LinuxNamespace
	for _, n := range s.Linux.Namespaces {
		if n.Type != typ {
			out = append(out, n)
		}
	}
	s.Linux.Namespaces = out
}

func withUserNS(s *specs.Spec) {
	withNS(s, specs.UserNamespace, "")
	s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 65536}}
	s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 65536}}
}

type validateCase struct {
	name   string
	mutate func(s *specs.Spec, bundle string)
	field  string // "" means the spec is valid; else the error starts "<field>: "
	kind   error  // defaults to errdefs.ErrInvalidArgument
	reason string // optional substring of the message
}

func runValidateCases(t *testing.T, cases []validateCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, bundle := newBundle(t)
			tc.mutate(s, bundle)
			err := Validate(s, bundle)
			if tc.field == "" {
				if err != nil {
					t.Fatalf("Validate: unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want one for %s", tc.field)
			}
			msg := err.Error()
			t.Log(msg)
			// Validators of the linux packages may name a subfield:
			// "process.scheduler.policy: ..." for field process.scheduler.
			if !strings.HasPrefix(msg, tc.field) || len(msg) == len(tc.field) ||
				!strings.HasPrefix(msg[len(tc.field):], ": ") && !strings.ContainsRune(".[", rune(msg[len(tc.field)])) {
				t.Errorf("error %q does not start with %q", msg, tc.field+": ")
			}
			if strings.Contains(msg, "\n") {
				t.Errorf("error %q spans several lines", msg)
			}
			kind := tc.kind
			if kind == nil {
				kind = errdefs.ErrInvalidArgument
			}
			if !errors.Is(err, kind) {
				t.Errorf("error %q is not of kind %v", msg, kind)
			}
			if tc.reason != "" && !strings.Contains(msg, tc.reason) {
				t.Errorf("error %q does not mention %q", msg, tc.reason)
			}
		})
	}
}

func TestValidateTopLevel(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"example is valid", func(s *specs.Spec, b string) {}, "", nil, ""},
		{"ociVersion missing", func(s *specs.Spec, b string) { s.Version = "" }, "ociVersion", nil, "required"},
		{"ociVersion not semver", func(s *specs.Spec, b string) { s.Version = "1.0" }, "ociVersion", nil, "not a semantic version"},
		{"ociVersion leading zero", func(s *specs.Spec, b string) { s.Version = "1.01.0" }, "ociVersion", nil, "not a semantic version"},
		{"ociVersion major 2", func(s *specs.Spec, b string) { s.Version = "2.0.0" }, "ociVersion", nil, "unsupported major version 2 (want 1.x)"},
		{"ociVersion major 0", func(s *specs.Spec, b string) { s.Version = "0.1.0" }, "ociVersion", nil, "unsupported major version 0"},
		{"ociVersion pre-release ok", func(s *specs.Spec, b string) { s.Version = "1.0.2-dev" }, "", nil, ""},
		{"ociVersion build ok", func(s *specs.Spec, b string) { s.Version = "1.2.0+abc.1" }, "", nil, ""},
		{"root missing", func(s *specs.Spec, b string) { s.Root = nil }, "root", nil, "required"},
		{"root.path empty", func(s *specs.Spec, b string) { s.Root.Path = "" }, "root.path", nil, "required"},
		{"root.path does not exist", func(s *specs.Spec, b string) { s.Root.Path = "nope" }, "root.path", errdefs.ErrNotFound, "does not exist"},
		{"root.path not a dir", func(s *specs.Spec, b string) {
			writeFile(t, filepath.Join(b, "file"))
			s.Root.Path = filepath.Join(b, "file")
		}, "root.path", nil, "not a directory"},
		{"root.path absolute ok", func(s *specs.Spec, b string) { s.Root.Path = filepath.Join(b, "rootfs") }, "", nil, ""},
		{"annotation empty key", func(s *specs.Spec, b string) { s.Annotations = map[string]string{"": "x"} }, "annotations", nil, "empty key"},
		{"no linux section", func(s *specs.Spec, b string) { s.Linux = nil; s.Hostname = "" }, "", nil, ""},
		{"hostname without uts", func(s *specs.Spec, b string) { withoutNS(s, specs.UTSNamespace) }, "hostname", nil, "uts namespace"},
		{"hostname in host uts", func(s *specs.Spec, b string) { withNS(s, specs.UTSNamespace, "/proc/self/ns/uts") }, "hostname", nil, "uts namespace"},
		{"domainname without uts", func(s *specs.Spec, b string) {
			s.Hostname = ""
			s.Domainname = "example.org"
			withoutNS(s, specs.UTSNamespace)
		}, "domainname", nil, "uts namespace"},
		{"hostname too long", func(s *specs.Spec, b string) { s.Hostname = strings.Repeat("h", 65) }, "hostname", nil, "64"},
		{"hooks invalid", func(s *specs.Spec, b string) {
			s.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: "relative/hook"}}}
		}, "hooks", nil, ""},
		{"hooks valid", func(s *specs.Spec, b string) {
			s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true", Timeout: ptr(5)}}}
		}, "", nil, ""},
	})
}

func TestValidateProcess(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"process missing is valid (start refuses it)", func(s *specs.Spec, b string) { s.Process = nil }, "", nil, ""},
		{"args empty", func(s *specs.Spec, b string) { s.Process.Args = nil }, "process.args", nil, "at least one"},
		{"args[0] empty", func(s *specs.Spec, b string) { s.Process.Args = []string{""} }, "process.args[0]", nil, "empty"},
		{"cwd empty", func(s *specs.Spec, b string) { s.Process.Cwd = "" }, "process.cwd", nil, "required"},
		{"cwd relative", func(s *specs.Spec, b string) { s.Process.Cwd = "home" }, "process.cwd", nil, "absolute"},
		{"env without =", func(s *specs.Spec, b string) { s.Process.Env = append(s.Process.Env, "FOO") }, "process.env[2]", nil, "KEY=VALUE"},
		{"env empty name", func(s *specs.Spec, b string) { s.Process.Env = []string{"=x"} }, "process.env[0]", nil, "empty name"},
		{"env empty value ok", func(s *specs.Spec, b string) { s.Process.Env = []string{"A="} }, "", nil, ""},
		{"rlimit unknown", func(s *specs.Spec, b string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_FOO"})
		}, "process.rlimits[1].type", nil, "RLIMIT_FOO"},
		{"rlimit duplicate", func(s *specs.Spec, b string) {
			s.Process.Rlimits = append(s.Process.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1})
		}, "process.rlimits[1].type", nil, "already set by process.rlimits[0]"},
		{"rlimit soft above hard", func(s *specs.Spec, b string) {
			s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: 2, Hard: 1}}
		}, "process.rlimits[0]", nil, "soft limit 2 is above hard limit 1"},
		{"cap bounding unknown", func(s *specs.Spec, b string) {
			s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_TEST")
		}, "process.capabilities.bounding[3]", nil, "CAP_TEST"},
		{"cap effective unknown", func(s *specs.Spec, b string) {
			s.Process.Capabilities.Effective = []string{"cap_kill"}
		}, "process.capabilities.effective[0]", nil, "cap_kill"},
		{"cap inheritable unknown", func(s *specs.Spec, b string) {
			s.Process.Capabilities.Inheritable = []string{"CAP_KILL", "KILL"}
		}, "process.capabilities.inheritable[1]", nil, "KILL"},
		{"cap permitted unknown", func(s *specs.Spec, b string) {
			s.Process.Capabilities.Permitted = []string{""}
		}, "process.capabilities.permitted[0]", nil, ""},
		{"cap ambient unknown", func(s *specs.Spec, b string) {
			s.Process.Capabilities.Ambient = []string{"CAP_NOPE"}
		}, "process.capabilities.ambient[0]", nil, "CAP_NOPE"},
		{"all caps ok", func(s *specs.Spec, b string) {
			s.Process.Capabilities.Bounding = []string{"CAP_SYS_ADMIN", "CAP_CHECKPOINT_RESTORE", "CAP_BPF"}
		}, "", nil, ""},
		{"consoleSize without terminal ignored", func(s *specs.Spec, b string) {
			s.Process.Terminal = false
			s.Process.ConsoleSize = &specs.Box{Height: 0, Width: 0}
		}, "", nil, ""},
		{"user ok", func(s *specs.Spec, b string) {
			s.Process.User = specs.User{UID: 1000, GID: 1000, Umask: ptr(uint32(0o22)), AdditionalGids: []uint32{5, 6}}
		}, "", nil, ""},
		{"umask too big", func(s *specs.Spec, b string) { s.Process.User.Umask = ptr(uint32(0o1000)) }, "process.user.umask", nil, ""},
		{"oomScoreAdj too high", func(s *specs.Spec, b string) { s.Process.OOMScoreAdj = ptr(1001) }, "process.oomScoreAdj", nil, "1001"},
		{"oomScoreAdj too low", func(s *specs.Spec, b string) { s.Process.OOMScoreAdj = ptr(-1001) }, "process.oomScoreAdj", nil, "-1001"},
		{"oomScoreAdj bounds ok", func(s *specs.Spec, b string) { s.Process.OOMScoreAdj = ptr(-1000) }, "", nil, ""},
		{"scheduler unknown policy", func(s *specs.Spec, b string) {
			s.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_FOO"}
		}, "process.scheduler", nil, ""},
		{"scheduler ok", func(s *specs.Spec, b string) {
			s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}
		}, "", nil, ""},
		{"ioPriority unknown class", func(s *specs.Spec, b string) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: "IOPRIO_CLASS_FOO"}
		}, "process.ioPriority", nil, ""},
		{"ioPriority ok", func(s *specs.Spec, b string) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 4}
		}, "", nil, ""},
		{"execCPUAffinity initial bad", func(s *specs.Spec, b string) {
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "x-y"}
		}, "process.execCPUAffinity.initial", nil, ""},
		{"execCPUAffinity final bad", func(s *specs.Spec, b string) {
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0", Final: "3-1"}
		}, "process.execCPUAffinity.final", nil, ""},
		{"execCPUAffinity ok", func(s *specs.Spec, b string) {
			s.Process.ExecCPUAffinity = &specs.CPUAffinity{Initial: "0-1", Final: "0,1"}
		}, "", nil, ""},
		{"apparmor and selinux not checked here", func(s *specs.Spec, b string) {
			s.Process.ApparmorProfile = "some-profile"
			s.Process.SelinuxLabel = "system_u:system_r:container_t:s0"
		}, "", nil, ""},
	})
}

func TestValidateMounts(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"destination empty", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Type: "tmpfs", Source: "tmpfs"})
		}, "mounts[7].destination", nil, "required"},
		{"relative destination tolerated", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "tmp", Type: "tmpfs", Source: "tmpfs"})
		}, "", nil, ""},
		{"malformed option", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro,nosuid"}})
		}, "mounts[7].options", nil, ""},
		{"bind source missing", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "/nonexistent/gantry", Options: []string{"rbind"}})
		}, "mounts[7].source", nil, "does not exist"},
		{"bind relative source resolves against bundle", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "missing", Type: "bind"})
		}, "mounts[7].source", nil, "missing"},
		{"bind relative source ok", func(s *specs.Spec, b string) {
			if err := os.Mkdir(filepath.Join(b, "data"), 0o755); err != nil {
				t.Fatal(err)
			}
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: "data", Options: []string{"bind", "ro"}})
		}, "", nil, ""},
		{"bind source empty", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Options: []string{"bind"}})
		}, "mounts[7].source", nil, "required"},
		{"mappings without idmap", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: b, Options: []string{"bind"},
				UIDMappings: []specs.LinuxIDMapping{{Size: 1}}, GIDMappings: []specs.LinuxIDMapping{{Size: 1}}})
		}, "mounts[7].options", nil, "idmap"},
		{"uidMappings without gidMappings", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: b, Options: []string{"bind", "idmap"},
				UIDMappings: []specs.LinuxIDMapping{{Size: 1}}})
		}, "mounts[7].gidMappings", nil, "required"},
		{"mapping size 0", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: b, Options: []string{"bind", "ridmap"},
				UIDMappings: []specs.LinuxIDMapping{{Size: 1}}, GIDMappings: []specs.LinuxIDMapping{{HostID: 5}}})
		}, "mounts[7].gidMappings[0].size", nil, "greater than 0"},
		{"idmap with mappings ok", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: b, Options: []string{"bind", "idmap"},
				UIDMappings: []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}, GIDMappings: []specs.LinuxIDMapping{{HostID: 1000, Size: 1}}})
		}, "", nil, ""},
		{"idmap without mappings or userns", func(s *specs.Spec, b string) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: b, Options: []string{"bind", "idmap"}})
		}, "mounts[7].options", nil, "user namespace"},
		{"idmap without mappings in userns ok", func(s *specs.Spec, b string) {
			withUserNS(s)
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Source: b, Options: []string{"bind", "idmap"}})
		}, "", nil, ""},
	})
}

func TestValidateNamespaces(t *testing.T) {
	runValidateCases(t, []validateCase{
		{"unknown type", func(s *specs.Spec, b string) { withNS(s, "foo", "") }, "linux.namespaces[6].type", nil, `unknown namespace type "foo"`},
		{"duplicate type", func(s *specs.Spec, b string) {
			s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.PIDNamespace})
		}, "linux.namespaces[6].type", nil, "already given by linux.namespaces[0]"},
		{"relative path", func(s *specs.Spec, b string) { withNS(s, specs.NetworkNamespace, "proc/1/ns/net") }, "linux.namespaces[1].path", nil, "absolute"},
		{"missing path", func(s *specs.Spec, b string) { withNS(s, specs.NetworkNamespace, "/nonexistent/netns") }, "linux.namespaces[1].path", nil, "does not exist"},
		{"joined path ok", func(s *specs.Spec, b string) { withNS(s, specs.NetworkNamespace, "/proc/self/ns/net") }, "", nil, ""},
		{"all types ok", func(s *specs.Spec, b string) {
			withUserNS(s)
			withNS(s, specs.TimeNamespace, "")
		}, "", nil, ""},
		{"user ns without uidMappings", func(s *specs.Spec, b string) {
			withUserNS(s)
			s.Linux.UIDMappings = nil
		}, "linux.uidMappings", nil, "required"},
		{"user ns without gidMappings", func(s *specs.Spec, b string) {
			withUserNS(s)
			s.Linux.GIDMappings = nil
		}, "linux.gidMappings", nil, "required"},
		{"joined user ns needs no mappings", func(s *specs.Spec, b string) {
			withNS(s, specs.UserNamespace, "/proc/self/ns/user")
		}, "", nil, ""},
		{"mappings without user ns", func(s *specs.Spec, b string) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{Size: 1}}
		}, "linux.uidMappings", nil, "user namespace"},
		{"gidMappings without user ns", func(s *specs.Spec, b string) {
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{Size: 1}}
		}, "linux.gidMappings", nil, "user namespace"},
		{"mapping size 0", func(s *specs.Spec, b string) {
			withUserNS(s)
			s.Linux.UIDMappings = append(s.Linux.UIDMappings, specs.LinuxIDMapping{ContainerID: 70000, HostID: 1})
		}, "linux.uidMappings[1].size", nil, "greater than 0"},
		{"mapping overflow", func(s *specs.Spec, b string) {
			withUserNS(s)
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 0xffffffff, Size: 2}}
		}, "linux.gidMappings[0]", nil, "past the last id"},
		{"timeOffsets without time ns", func(s *specs.Spec, b string) {
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, "linux.timeOffsets", nil, "time namespace"},
		{"timeOffsets with joined time ns", func(s *specs.Spec, b string) {
			withNS(s, specs.TimeNamespace, "/proc/self/ns/time")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}}
		}, "linux.timeOffsets", nil, "joining"},
		{"timeOffsets unknown clock", func(s *specs.Spec, b string) {
			withNS(s, specs.TimeNamespace, "")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"realtime": {Secs: 10}}
		}, "linux.timeOffsets.realtime", nil, "unknown clock"},
		{"timeOffsets nanosecs", func(s *specs.Spec, b string) {
			withNS(s, specs.TimeNamespace, "")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Nanosecs: 1e9}}
		}, "linux.timeOffsets.boottime.nanosecs", nil, ""},
		{"timeOffsets ok", func(s *specs.Spec, b string) {
			withNS(s, specs.TimeNamespace, "")
			s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"boottime": {Secs: -5, Nanosecs: 7}, "monotonic": {Secs: 3}}
		}, "", nil, ""},
	})
}

func TestValidateLinux(t *testing.T) {
	dev := func(d specs.LinuxDevice) func(s *specs.Spec, b string) {
		return func(s *specs.Spec, b string) { s.Linux.Devices = append(s.Linux.Devices, d) }
	}
	runValidateCases(t, []validateCase{
		{"device ok", dev(specs.LinuxDevice{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229, FileMode: ptr(os.FileMode(0o666))}), "", nil, ""},
		{"device fifo without numbers ok", dev(specs.LinuxDevice{Path: "/dev/fifo", Type: "p"}), "", nil, ""},
		{"device outside /dev ok", dev(specs.LinuxDevice{Path: "/opt/null", Type: "c", Major: 1, Minor: 3}), "", nil, ""},
		{"device type unknown", dev(specs.LinuxDevice{Path: "/dev/x", Type: "x"}), "linux.devices[0].type", nil, "unknown device type"},
		{"device type missing", dev(specs.LinuxDevice{Path: "/dev/x"}), "linux.devices[0].type", nil, "required"},
		{"device path relative", dev(specs.LinuxDevice{Path: "dev/x", Type: "b", Major: 8}), "linux.devices[0].path", nil, "absolute"},
		{"device path empty", dev(specs.LinuxDevice{Type: "u", Major: 8}), "linux.devices[0].path", nil, "required"},
		{"device negative major", dev(specs.LinuxDevice{Path: "/dev/x", Type: "c", Major: -1}), "linux.devices[0].major", nil, "negative"},
		{"device duplicate path", func(s *specs.Spec, b string) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/a", Type: "c", Major: 1, Minor: 3}, {Path: "/dev/./a", Type: "c", Major: 1, Minor: 5}}
		}, "linux.devices[1].path", nil, "already used by linux.devices[0]"},
		{"cgroupsPath absolute ok", func(s *specs.Spec, b string) { s.Linux.CgroupsPath = "/gantry/c1" }, "", nil, ""},
		{"cgroupsPath relative ok", func(s *specs.Spec, b string) { s.Linux.CgroupsPath = "gantry/c1" }, "", nil, ""},
		{"cgroupsPath systemd ok", func(s *specs.Spec, b string) { s.Linux.CgroupsPath = "system.slice:gantry:c1" }, "", nil, ""},
		{"cgroupsPath systemd bad slice", func(s *specs.Spec, b string) { s.Linux.CgroupsPath = "system:gantry:c1" }, "linux.cgroupsPath", nil, ".slice"},
		{"cgroupsPath dotdot", func(s *specs.Spec, b string) { s.Linux.CgroupsPath = "../../escape" }, "linux.cgroupsPath", nil, ".."},
		{"resources invalid", func(s *specs.Spec, b string) {
			s.Linux.Resources.Devices = append(s.Linux.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: "z", Access: "rwm"})
		}, "linux.resources", nil, ""},
		{"sysctl net without netns", func(s *specs.Spec, b string) {
			withoutNS(s, specs.NetworkNamespace)
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1"}
		}, `linux.sysctl["net.ipv4.ip_forward"]`, nil, "network namespace"},
		{"sysctl net in host netns", func(s *specs.Spec, b string) {
			withNS(s, specs.NetworkNamespace, "/proc/self/ns/net")
			s.Linux.Sysctl = map[string]string{"net.core.somaxconn": "256"}
		}, `linux.sysctl["net.core.somaxconn"]`, nil, "network namespace"},
		{"sysctl net ok", func(s *specs.Spec, b string) {
			s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "net/core/somaxconn": "256"}
		}, "", nil, ""},
		{"sysctl ipc without ipc ns", func(s *specs.Spec, b string) {
			withoutNS(s, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1"}
		}, `linux.sysctl["kernel.shmmax"]`, nil, "ipc namespace"},
		{"sysctl mqueue without ipc ns", func(s *specs.Spec, b string) {
			withoutNS(s, specs.IPCNamespace)
			s.Linux.Sysctl = map[string]string{"fs.mqueue.msg_max": "1"}
		}, `linux.sysctl["fs.mqueue.msg_max"]`, nil, "ipc namespace"},
		{"sysctl ipc ok", func(s *specs.Spec, b string) {
			s.Linux.Sysctl = map[string]string{"kernel.shmmax": "1", "kernel.msgmax": "1", "kernel.sem": "1 2 3 4", "fs.mqueue.queues_max": "5"}
		}, "", nil, ""},
		{"sysctl hostname without uts", func(s *specs.Spec, b string) {
			s.Hostname = ""
			withoutNS(s, specs.UTSNamespace)
			s.Linux.Sysctl = map[string]string{"kernel.domainname": "x"}
		}, `linux.sysctl["kernel.domainname"]`, nil, "uts namespace"},
		{"sysctl hostname conflicts", func(s *specs.Spec, b string) {
			s.Linux.Sysctl = map[string]string{"kernel.hostname": "other"}
		}, `linux.sysctl["kernel.hostname"]`, nil, "conflicts"},
		{"sysctl not namespaced", func(s *specs.Spec, b string) {
			s.Linux.Sysctl = map[string]string{"vm.swappiness": "10"}
		}, `linux.sysctl["vm.swappiness"]`, nil, "not a namespaced sysctl"},
		{"sysctl kernel.pid_max not namespaced", func(s *specs.Spec, b string) {
			s.Linux.Sysctl = map[string]string{"kernel.pid_max": "10"}
		}, `linux.sysctl["kernel.pid_max"]`, nil, "not a namespaced sysctl"},
		{"sysctl malformed", func(s *specs.Spec, b string) {
			s.Linux.Sysctl = map[string]string{"net..ipv4": "1"}
		}, `linux.sysctl["net..ipv4"]`, nil, "malformed"},
		{"seccomp invalid", func(s *specs.Spec, b string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_FOO"}
		}, "linux.seccomp", nil, "SCMP_ACT_FOO"},
		{"seccomp ok", func(s *specs.Spec, b string) {
			s.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}
		}, "", nil, ""},
		{"rootfsPropagation unknown", func(s *specs.Spec, b string) { s.Linux.RootfsPropagation = "bogus" }, "linux.rootfsPropagation", nil, "bogus"},
		{"rootfsPropagation rslave ok", func(s *specs.Spec, b string) { s.Linux.RootfsPropagation = "rslave" }, "", nil, ""},
		{"rootfsPropagation shared ok", func(s *specs.Spec, b string) { s.Linux.RootfsPropagation = "shared" }, "", nil, ""},
		{"maskedPaths relative", func(s *specs.Spec, b string) {
			s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "proc/kcore")
		}, "linux.maskedPaths[11]", nil, "absolute"},
		{"readonlyPaths relative", func(s *specs.Spec, b string) { s.Linux.ReadonlyPaths = []string{"proc/sys"} }, "linux.readonlyPaths[0]", nil, "absolute"},
		{"personality ok", func(s *specs.Spec, b string) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		}, "", nil, ""},
		{"personality unknown domain", func(s *specs.Spec, b string) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: "LINUX64"}
		}, "linux.personality.domain", nil, "LINUX64"},
		{"personality flags", func(s *specs.Spec, b string) {
			s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"ADDR_NO_RANDOMIZE"}}
		}, "linux.personality.flags[0]", nil, "ADDR_NO_RANDOMIZE"},
		{"memoryPolicy unknown mode", func(s *specs.Spec, b string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: "MPOL_FOO"}
		}, "linux.memoryPolicy.mode", nil, "MPOL_FOO"},
		{"memoryPolicy bind without nodes", func(s *specs.Spec, b string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind}
		}, "linux.memoryPolicy.nodes", nil, "required"},
		{"memoryPolicy default with nodes", func(s *specs.Spec, b string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolDefault, Nodes: "0"}
		}, "linux.memoryPolicy.nodes", nil, "empty"},
		{"memoryPolicy bad nodes", func(s *specs.Spec, b string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolInterleave, Nodes: "a-b"}
		}, "linux.memoryPolicy.nodes", nil, ""},
		{"memoryPolicy exclusive flags", func(s *specs.Spec, b string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolBind, Nodes: "0",
				Flags: []specs.MemoryPolicyFlagType{specs.MpolFStaticNodes, specs.MpolFRelativeNodes}}
		}, "linux.memoryPolicy.flags", nil, "exclude"},
		{"memoryPolicy ok", func(s *specs.Spec, b string) {
			s.Linux.MemoryPolicy = &specs.LinuxMemoryPolicy{Mode: specs.MpolInterleave, Nodes: "0-1",
				Flags: []specs.MemoryPolicyFlagType{specs.MpolFStaticNodes}}
		}, "", nil, ""},
		{"netDevices without netns", func(s *specs.Spec, b string) {
			withoutNS(s, specs.NetworkNamespace)
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {}}
		}, "linux.netDevices", nil, "network namespace"},
		{"netDevices bad name", func(s *specs.Spec, b string) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {Name: "a/b"}}
		}, "linux.netDevices.eth1.name", nil, "a/b"},
		{"netDevices name clash", func(s *specs.Spec, b string) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {Name: "c0"}, "eth2": {Name: "c0"}}
		}, "linux.netDevices.eth2.name", nil, "eth1"},
		{"netDevices ok", func(s *specs.Spec, b string) {
			s.Linux.NetDevices = map[string]specs.LinuxNetDevice{"eth1": {Name: "c%d"}, "eth2": {Name: "c%d"}, "dummy0": {}}
		}, "", nil, ""},
	})
}

func TestValidateIntelRdt(t *testing.T) {
	old := resctrlMounted
	t.Cleanup(func() { resctrlMounted = old })
	rdt := func(mounted bool, r specs.LinuxIntelRdt) func(s *specs.Spec, b string) {
		return func(s *specs.Spec, b string) {
			resctrlMounted = func() bool { return mounted }
			s.Linux.IntelRdt = &r
		}
	}
	runValidateCases(t, []validateCase{
		{"resctrl not mounted", rdt(false, specs.LinuxIntelRdt{ClosID: "c1"}), "linux.intelRdt", errdefs.ErrFailedPrecondition, "resctrl"},
		{"resctrl mounted ok", rdt(true, specs.LinuxIntelRdt{ClosID: "c1", L3CacheSchema: "L3:0=ff", MemBwSchema: "MB:0=70", EnableMonitoring: true}), "", nil, ""},
		{"closID root ok", rdt(true, specs.LinuxIntelRdt{ClosID: "/"}), "", nil, ""},
		{"closID with slash", rdt(true, specs.LinuxIntelRdt{ClosID: "a/b"}), "linux.intelRdt.closID", nil, "a/b"},
		{"memBwSchema without MB:", rdt(true, specs.LinuxIntelRdt{MemBwSchema: "L3:0=ff"}), "linux.intelRdt.memBwSchema", nil, "MB:"},
		{"schemata newline", rdt(true, specs.LinuxIntelRdt{Schemata: []string{"L3:0=f", "MB:0=1\nL2:0=f"}}), "linux.intelRdt.schemata[1]", nil, "newline"},
	})
}

func TestValidateNil(t *testing.T) {
	if err := Validate(nil, t.TempDir()); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("Validate(nil) = %v, want an invalid-argument error", err)
	}
}

func TestValidateProcessAlone(t *testing.T) {
	if err := ValidateProcess(Example().Process); err != nil {
		t.Errorf("ValidateProcess(example process): %v", err)
	}
	p := Example().Process
	p.Cwd = "relative"
	err := ValidateProcess(p)
	if err == nil || !strings.HasPrefix(err.Error(), "process.cwd: ") || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("ValidateProcess(relative cwd) = %v, want a process.cwd error", err)
	}
	if err := ValidateProcess(nil); err == nil || !strings.HasPrefix(err.Error(), "process: ") {
		t.Errorf("ValidateProcess(nil) = %v, want a process error", err)
	}
}

func TestSemver(t *testing.T) {
	for _, tc := range []struct {
		in    string
		ok    bool
		major uint64
	}{
		{"1.0.0", true, 1},
		{"1.3.0", true, 1},
		{"10.20.30", true, 10},
		{"1.0.2-dev", true, 1},
		{"1.0.0-rc.1+build.5", true, 1},
		{"1.0.0-0.3.7", true, 1},
		{"1.0.0-x-y-z.--", true, 1},
		{"", false, 0},
		{"1", false, 0},
		{"1.0", false, 0},
		{"1.0.0.0", false, 0},
		{"v1.0.0", false, 0},
		{"01.0.0", false, 0},
		{"1.0.0-", false, 0},
		{"1.0.0-01", false, 0},
		{"1.0.0+", false, 0},
		{"1.0.0-a..b", false, 0},
		{"1.0.0-a_b", false, 0},
		{"1.-1.0", false, 0},
		{"99999999999999999999.0.0", false, 0},
	} {
		v, err := parseSemver(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("parseSemver(%q): err = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && v.major != tc.major {
			t.Errorf("parseSemver(%q).major = %d, want %d", tc.in, v.major, tc.major)
		}
	}
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestValidateNamespaceKernelSupport(t *testing.T) {
	// A fake /proc/self/ns listing every type but time: a kernel without
	// time namespaces.
	dir := t.TempDir()
	for typ, file := range nsFiles {
		if typ != specs.TimeNamespace {
			writeFile(t, filepath.Join(dir, file))
		}
	}
	old := procSelfNS
	procSelfNS = dir
	t.Cleanup(func() { procSelfNS = old })

	s, bundle := newBundle(t)
	if err := Validate(s, bundle); err != nil {
		t.Fatalf("Validate without time namespace: %v", err)
	}
	withNS(s, specs.TimeNamespace, "")
	err := Validate(s, bundle)
	if err == nil || !strings.HasPrefix(err.Error(), "linux.namespaces[6].type: ") || !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("Validate with time namespace on a kernel without = %v, want a failed-precondition error on linux.namespaces[6].type", err)
	}
}
