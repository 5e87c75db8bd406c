package bundle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestNewID(t *testing.T) {
	valid := regexp.MustCompile(`^gt-[a-z0-9-]*[0-9a-f]{8}$`)
	tests := []struct {
		name, prefix string
	}{
		{"TestRun", "gt-testrun-"},
		{"TestCaps/non-root with ambient", "gt-ps-non-root-with-ambient-"}, // the last 24 characters
		{"", "gt-"},
		{"///", "gt-"},
		{"TestAVeryLongNameThatGoesOnAndOnForever/sub", "gt-"},
	}
	for _, tt := range tests {
		id := NewID(tt.name)
		if !strings.HasPrefix(id, tt.prefix) || !valid.MatchString(id) {
			t.Errorf("NewID(%q) = %q, want prefix %q and match %s", tt.name, id, tt.prefix, valid)
		}
		if len(id) > 40 {
			t.Errorf("NewID(%q) = %q: longer than 40", tt.name, id)
		}
		if id == NewID(tt.name) {
			t.Errorf("NewID(%q) returned %q twice", tt.name, id)
		}
	}
}

func TestBaseSpec(t *testing.T) {
	s := BaseSpec("abc")
	if want := fmt.Sprintf("/gantry-test-%d/abc", os.Getpid()); s.Linux.CgroupsPath != want {
		t.Errorf("cgroupsPath = %q", s.Linux.CgroupsPath)
	}
	if s.Process.Terminal || strings.Join(s.Process.Args, " ") != "/probe report" {
		t.Errorf("process = %+v, want no terminal and /probe report", s.Process)
	}
	// A fresh spec each call: editing one must not change the next.
	s.Process.Capabilities.Bounding[0] = "CAP_SYS_ADMIN"
	if BaseSpec("x").Process.Capabilities.Bounding[0] != "CAP_AUDIT_WRITE" {
		t.Error("BaseSpec shares slices between calls")
	}
}

func TestNew(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the probe and the template rootfs")
	}
	if _, err := os.Stat(busyboxStatic); err != nil {
		t.Skipf("needs busybox-static at %s (scripts/deps.sh)", busyboxStatic)
	}
	b := New(t, Args("/bin/true"))
	for _, p := range []string{"probe", "bin/busybox", "etc/passwd", "etc/group", "tmp", "proc", "dev", "sys"} {
		if _, err := os.Lstat(filepath.Join(b.Rootfs(), p)); err != nil {
			t.Errorf("rootfs lacks %s: %v", p, err)
		}
	}
	if target, err := os.Readlink(filepath.Join(b.Rootfs(), "bin", "sh")); err != nil || target != "busybox" {
		t.Errorf("bin/sh -> %q (%v), want busybox", target, err)
	}
	passwd, _ := os.ReadFile(filepath.Join(b.Rootfs(), "etc", "passwd"))
	if !strings.Contains(string(passwd), "tester:x:1000:1000:") {
		t.Errorf("etc/passwd lacks tester: %q", passwd)
	}
	if st, err := os.Stat(filepath.Join(b.Rootfs(), "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 {
		t.Errorf("tmp is not sticky: %v", err)
	}
	data, err := os.ReadFile(b.ConfigPath())
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatalf("config.json: %v", err)
	}
	if strings.Join(s.Process.Args, " ") != "/bin/true" || s.Linux.CgroupsPath != CgroupParent+"/"+b.ID {
		t.Errorf("config.json: args %q cgroupsPath %q", s.Process.Args, s.Linux.CgroupsPath)
	}
	// Write persists edits.
	b.Spec.Hostname = "edited"
	b.Write()
	data, _ = os.ReadFile(b.ConfigPath())
	if !strings.Contains(string(data), `"hostname": "edited"`) {
		t.Errorf("Write did not persist the edit: %s", data)
	}
}
