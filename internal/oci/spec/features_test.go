package spec

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go/features"

	"github.com/gantry-project/gantry/internal/oci/linux/capability"
	"github.com/gantry-project/gantry/internal/oci/linux/rootfs"
)

func TestFeatures(t *testing.T) {
	f := Features()
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var back features.Features
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("unmarshal features: %v", err)
	}
	if !reflect.DeepEqual(f, &back) {
		t.Errorf("features do not round-trip through JSON:\n got %+v\nwant %+v", &back, f)
	}

	if f.OCIVersionMin != "1.0.0" || f.OCIVersionMax != "1.3.0" {
		t.Errorf("ociVersion range = %s..%s, want 1.0.0..1.3.0", f.OCIVersionMin, f.OCIVersionMax)
	}
	if want := []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"}; !slices.Equal(f.Hooks, want) {
		t.Errorf("hooks = %v, want %v", f.Hooks, want)
	}
	for _, o := range []string{"ro", "rw", "bind", "rbind", "nosuid", "rprivate", "idmap"} {
		if !slices.Contains(f.MountOptions, o) {
			t.Errorf("mountOptions %v lack %q", f.MountOptions, o)
		}
	}
	for _, o := range f.MountOptions {
		mo, err := rootfs.ParseMountOptions([]string{o})
		if err != nil || mo.Data != "" {
			t.Errorf("mountOptions lists %q, which ParseMountOptions does not handle itself", o)
		}
	}
	l := f.Linux
	if want := []string{"pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"}; !slices.Equal(l.Namespaces, want) {
		t.Errorf("namespaces = %v, want %v", l.Namespaces, want)
	}
	if !slices.Equal(l.Capabilities, capability.Known()) || !slices.Contains(l.Capabilities, "CAP_SYS_ADMIN") {
		t.Errorf("capabilities = %v, want capability.Known()", l.Capabilities)
	}
	c := l.Cgroup
	if c == nil || !*c.V1 || !*c.V2 || *c.Systemd || *c.SystemdUser || !*c.Rdma {
		t.Errorf("cgroup = %+v, want v1, v2 and rdma only", c)
	}
	if sc := l.Seccomp; sc == nil || sc.Enabled == nil || !slices.Contains(sc.Actions, "SCMP_ACT_ALLOW") ||
		!slices.Contains(sc.Operators, "SCMP_CMP_EQ") || !slices.Contains(sc.KnownFlags, "SECCOMP_FILTER_FLAG_LOG") {
		t.Errorf("seccomp = %+v, want actions, operators and flags", sc)
	}
	if l.Apparmor == nil || l.Apparmor.Enabled == nil || l.Selinux == nil || l.Selinux.Enabled == nil {
		t.Error("apparmor/selinux enabled flags are missing")
	}
	if l.IntelRdt == nil || l.IntelRdt.Enabled == nil || *l.IntelRdt.Enabled != resctrlMounted() {
		t.Errorf("intelRdt = %+v, want enabled = resctrl mounted", l.IntelRdt)
	}
	if l.MountExtensions == nil || l.MountExtensions.IDMap == nil || !*l.MountExtensions.IDMap.Enabled {
		t.Error("mountExtensions.idmap.enabled is not true")
	}
	if f.Annotations[VersionAnnotation] == "" {
		t.Errorf("annotations %v lack %s", f.Annotations, VersionAnnotation)
	}
}
