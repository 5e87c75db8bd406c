package bundle

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/test/testcgroup"
)

// CgroupParent is the cgroup under which every bundle of this process puts
// its container: linux.cgroupsPath is CgroupParent + "/" + ID. It names the
// process ("/gantry-test-PID"), so that test packages running side by side
// never share a parent and each removes its own when it ends
// (RemoveCgroupParent) without racing another one's create.
var CgroupParent = fmt.Sprintf("/gantry-test-%d", os.Getpid())

// RemoveCgroupParent kills whatever still runs below CgroupParent (a
// container a failed test left) and removes its cgroups and CgroupParent
// itself, in every hierarchy. Test packages that create bundles call it
// once, after their tests.
func RemoveCgroupParent() error {
	return testcgroup.Remove(CgroupParent)
}

// Bundle is an OCI bundle in a temporary directory.
type Bundle struct {
	// Dir holds config.json and the rootfs directory.
	Dir string
	// ID is a container id unique to this bundle.
	ID string
	// Spec is what Write writes to config.json.
	Spec *specs.Spec

	t testing.TB
}

// Rootfs returns the bundle's rootfs path.
func (b *Bundle) Rootfs() string { return filepath.Join(b.Dir, "rootfs") }

// ConfigPath returns the path of the bundle's config.json.
func (b *Bundle) ConfigPath() string { return filepath.Join(b.Dir, "config.json") }

// New makes a bundle in a t.TempDir: a copy of the template rootfs and a
// config.json from BaseSpec with opts applied in order.
func New(t testing.TB, opts ...func(*specs.Spec)) *Bundle {
	t.Helper()
	tmpl := Rootfs(t)
	dir := t.TempDir()
	// The template may be rebuilt by another test process; copy it under
	// a shared lock.
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := lock(root, unix.LOCK_SH)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("cp", "-a", tmpl, filepath.Join(dir, "rootfs")).CombinedOutput()
	unlock()
	if err != nil {
		t.Fatalf("copy template rootfs %s: %v: %s", tmpl, err, out)
	}
	id := NewID(t.Name())
	b := &Bundle{Dir: dir, ID: id, Spec: BaseSpec(id), t: t}
	for _, o := range opts {
		o(b.Spec)
	}
	b.Write()
	return b
}

// Write writes b.Spec to config.json; call it after editing Spec.
func (b *Bundle) Write() {
	b.t.Helper()
	if err := WriteSpec(b.ConfigPath(), b.Spec); err != nil {
		b.t.Fatal(err)
	}
}

// WriteSpec writes s as JSON to path.
func WriteSpec(path string, s *specs.Spec) error {
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

var idUnsafe = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// NewID returns a container id made of a short, sanitised form of name and
// a random suffix: "gt-<name>-<8 hex>".
func NewID(name string) string {
	name = strings.Trim(idUnsafe.ReplaceAllString(strings.ToLower(name), "-"), "-")
	if len(name) > 24 {
		name = name[len(name)-24:]
		name = strings.TrimLeft(name, "-")
	}
	var r [4]byte
	if _, err := rand.Read(r[:]); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	if name == "" {
		return "gt-" + hex.EncodeToString(r[:])
	}
	return "gt-" + name + "-" + hex.EncodeToString(r[:])
}

// Args returns an option that sets process.args.
func Args(args ...string) func(*specs.Spec) {
	return func(s *specs.Spec) { s.Process.Args = args }
}

// BaseSpec returns the spec that `runc spec` writes, with these changes:
// args ["/probe", "report"], no terminal, and linux.cgroupsPath
// CgroupParent/id.
func BaseSpec(id string) *specs.Spec {
	caps := []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	deny := false
	return &specs.Spec{
		Version: specs.Version,
		Process: &specs.Process{
			Terminal: false,
			User:     specs.User{UID: 0, GID: 0},
			Args:     []string{"/probe", "report"},
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"TERM=xterm",
			},
			Cwd: "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding:  append([]string(nil), caps...),
				Effective: append([]string(nil), caps...),
				Permitted: append([]string(nil), caps...),
				Ambient:   append([]string(nil), caps...),
			},
			Rlimits: []specs.POSIXRlimit{
				{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024},
			},
			NoNewPrivileges: true,
		},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "gantry",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs",
				Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts",
				Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm",
				Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue",
				Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs",
				Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup",
				Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: CgroupParent + "/" + id,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: deny, Access: "rwm"}},
			},
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace},
				{Type: specs.NetworkNamespace},
				{Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace},
				{Type: specs.MountNamespace},
			},
			MaskedPaths: []string{
				"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
				"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
				"/proc/sched_debug", "/sys/firmware", "/proc/scsi",
			},
			ReadonlyPaths: []string{
				"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
			},
		},
	}
}
