package spec

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestExample(t *testing.T) {
	s, bundle := newBundle(t)
	if err := Validate(s, bundle); err != nil {
		t.Fatalf("Validate(Example()): %v", err)
	}
	if s.Version != "1.3.0" {
		t.Errorf("ociVersion = %q, want 1.3.0", s.Version)
	}
	p := s.Process
	if !p.Terminal || !slices.Equal(p.Args, []string{"sh"}) || p.Cwd != "/" || !p.NoNewPrivileges {
		t.Errorf("process = %+v, want terminal sh in / with noNewPrivileges", p)
	}
	if len(p.Rlimits) != 1 || p.Rlimits[0] != (specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}) {
		t.Errorf("rlimits = %+v, want RLIMIT_NOFILE 1024/1024", p.Rlimits)
	}
	for name, set := range map[string][]string{
		"bounding": p.Capabilities.Bounding, "effective": p.Capabilities.Effective,
		"permitted": p.Capabilities.Permitted, "ambient": p.Capabilities.Ambient,
	} {
		if !slices.Equal(set, defaultCaps) {
			t.Errorf("capabilities.%s = %v, want %v", name, set, defaultCaps)
		}
	}
	var dests []string
	for _, m := range s.Mounts {
		dests = append(dests, m.Destination)
	}
	want := []string{"/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys", "/sys/fs/cgroup"}
	if !slices.Equal(dests, want) {
		t.Errorf("mount destinations = %v, want %v", dests, want)
	}
	var nss []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		nss = append(nss, n.Type)
	}
	for _, n := range []specs.LinuxNamespaceType{"pid", "network", "ipc", "uts", "mount", "cgroup"} {
		if !slices.Contains(nss, n) {
			t.Errorf("namespaces %v lack %s", nss, n)
		}
	}
	if !slices.Contains(s.Linux.MaskedPaths, "/proc/kcore") || !slices.Contains(s.Linux.ReadonlyPaths, "/proc/sys") {
		t.Errorf("masked %v / readonly %v lack the defaults", s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	// Each call returns a fresh value.
	Example().Process.Capabilities.Bounding[0] = "CHANGED"
	if Example().Process.Capabilities.Bounding[0] == "CHANGED" || defaultCaps[0] == "CHANGED" {
		t.Error("Example shares state between calls")
	}
	// The JSON uses the runtime-spec property names.
	b, err := json.Marshal(Example())
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"ociVersion":"1.3.0"`, `"terminal":true`, `"noNewPrivileges":true`, `"maskedPaths"`} {
		if !strings.Contains(string(b), key) {
			t.Errorf("example JSON lacks %s", key)
		}
	}
}

func TestToRootless(t *testing.T) {
	s, bundle := newBundle(t)
	s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmax": "1"}
	uid, gid := os.Getuid(), os.Getgid()
	ToRootless(s, uid, gid)
	if err := Validate(s, bundle); err != nil {
		t.Fatalf("Validate(rootless example): %v", err)
	}
	var nss []specs.LinuxNamespaceType
	for _, n := range s.Linux.Namespaces {
		nss = append(nss, n.Type)
	}
	if slices.Contains(nss, specs.NetworkNamespace) {
		t.Errorf("namespaces %v still hold network", nss)
	}
	if !slices.Contains(nss, specs.UserNamespace) {
		t.Errorf("namespaces %v lack user", nss)
	}
	wantU := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(uid), Size: 1}}
	wantG := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(gid), Size: 1}}
	if !slices.Equal(s.Linux.UIDMappings, wantU) || !slices.Equal(s.Linux.GIDMappings, wantG) {
		t.Errorf("mappings = %v / %v, want %v / %v", s.Linux.UIDMappings, s.Linux.GIDMappings, wantU, wantG)
	}
	if s.Linux.Resources != nil {
		t.Errorf("resources = %+v, want none", s.Linux.Resources)
	}
	if _, ok := s.Linux.Sysctl["net.ipv4.ip_forward"]; ok {
		t.Error("net.* sysctl kept without a network namespace")
	}
	if _, ok := s.Linux.Sysctl["kernel.shmmax"]; !ok {
		t.Error("ipc sysctl dropped")
	}
	for _, m := range s.Mounts {
		for _, o := range m.Options {
			if strings.HasPrefix(o, "gid=") || strings.HasPrefix(o, "uid=") {
				t.Errorf("mount %s keeps option %s", m.Destination, o)
			}
		}
		if m.Destination == "/sys" && (m.Source != "/sys" || !slices.Contains(m.Options, "rbind") || !slices.Contains(m.Options, "ro")) {
			t.Errorf("/sys mount = %+v, want a read-only rbind of /sys", m)
		}
	}
	// Idempotent: a second call leaves one user namespace.
	ToRootless(s, uid, gid)
	if err := Validate(s, bundle); err != nil {
		t.Fatalf("Validate after a second ToRootless: %v", err)
	}
}

func TestToRootlessNoLinux(t *testing.T) {
	s := &specs.Spec{Version: Version}
	ToRootless(s, 1000, 1000)
	if s.Linux == nil || len(s.Linux.Namespaces) != 1 || s.Linux.Namespaces[0].Type != specs.UserNamespace {
		t.Fatalf("linux = %+v, want just a user namespace", s.Linux)
	}
}
