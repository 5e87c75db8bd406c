package label

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// fixtures points the package at files in a temp dir for the duration of t.
func fixtures(t *testing.T, apparmor string, selinux bool) string {
	t.Helper()
	dir := t.TempDir()
	oldA, oldS, oldD := apparmorEnabledPath, selinuxEnforcePath, attrDir
	t.Cleanup(func() { apparmorEnabledPath, selinuxEnforcePath, attrDir = oldA, oldS, oldD })
	apparmorEnabledPath = filepath.Join(dir, "apparmor-enabled")
	selinuxEnforcePath = filepath.Join(dir, "selinux-enforce")
	attrDir = filepath.Join(dir, "attr")
	if apparmor != "" {
		if err := os.WriteFile(apparmorEnabledPath, []byte(apparmor), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if selinux {
		if err := os.WriteFile(selinuxEnforcePath, []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(attrDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(attrDir, "exec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return attrDir
}

func TestEnabled(t *testing.T) {
	tests := []struct {
		apparmor string
		selinux  bool
		wantA    bool
	}{
		{"Y\n", true, true},
		{"N\n", false, false},
		{"", false, false},
	}
	for _, tc := range tests {
		fixtures(t, tc.apparmor, tc.selinux)
		if got := AppArmorEnabled(); got != tc.wantA {
			t.Errorf("AppArmorEnabled with %q = %v", tc.apparmor, got)
		}
		if got := SELinuxEnabled(); got != tc.selinux {
			t.Errorf("SELinuxEnabled = %v, want %v", got, tc.selinux)
		}
	}
}

func TestApplyProcessNotEnabled(t *testing.T) {
	fixtures(t, "N\n", false)
	if err := ApplyProcess("", ""); err != nil {
		t.Fatalf("ApplyProcess with nothing asked = %v", err)
	}
	err := ApplyProcess("docker-default", "")
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.HasPrefix(err.Error(), "process.apparmorProfile: AppArmor is not enabled on this kernel") {
		t.Fatalf("ApplyProcess(apparmor) = %v", err)
	}
	err = ApplyProcess("", "system_u:system_r:container_t:s0")
	if !errors.Is(err, errdefs.ErrNotImplemented) || !strings.HasPrefix(err.Error(), "process.selinuxLabel: SELinux is not enabled on this kernel") {
		t.Fatalf("ApplyProcess(selinux) = %v", err)
	}
}

func TestApplyProcessWrites(t *testing.T) {
	dir := fixtures(t, "Y\n", true)
	if err := ApplyProcess("", "system_u:system_r:container_t:s0"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "exec")); string(b) != "system_u:system_r:container_t:s0" {
		t.Fatalf("attr/exec = %q", b)
	}
	// Without the per-LSM directory the profile goes to attr/exec. (The
	// fixture is a regular file, which the write does not truncate.)
	if err := os.Truncate(filepath.Join(dir, "exec"), 0); err != nil {
		t.Fatal(err)
	}
	if err := ApplyProcess("docker-default", ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "exec")); string(b) != "exec docker-default" {
		t.Fatalf("attr/exec = %q", b)
	}
	// With it, the profile goes there.
	if err := os.MkdirAll(filepath.Join(dir, "apparmor"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "apparmor", "exec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := ApplyProcess("unconfined", ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "apparmor", "exec")); string(b) != "exec unconfined" {
		t.Fatalf("attr/apparmor/exec = %q", b)
	}
}

// On the real kernel: without the LSMs, asking for them must fail cleanly.
func TestApplyProcessHost(t *testing.T) {
	if AppArmorEnabled() {
		t.Skip("AppArmor is enabled here; not changing this test process's exec label")
	}
	if err := ApplyProcess("some-profile", ""); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Fatalf("ApplyProcess on a kernel without AppArmor = %v", err)
	}
}
