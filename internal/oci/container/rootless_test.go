package container

import (
	"fmt"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestLimitField(t *testing.T) {
	limit := int64(1 << 20)
	allow := true
	for _, tc := range []struct {
		name string
		r    *specs.LinuxResources
		want string
	}{
		{"nil", nil, ""},
		{"devices only", &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: allow, Access: "rwm"}}}, ""},
		{"memory", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}}, "memory"},
		{"pids", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: &limit}}, "pids"},
		{"unified", &specs.LinuxResources{Unified: map[string]string{"memory.max": "1M"}}, "unified"},
	} {
		if got := limitField(tc.r); got != tc.want {
			t.Errorf("%s: limitField = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestPermissionError(t *testing.T) {
	wrapped := fmt.Errorf("create unified cgroup: %w", &os.PathError{Op: "mkdir", Path: "/x", Err: unix.EACCES})
	if !permissionError(wrapped) {
		t.Errorf("permissionError(%v) = false, want true", wrapped)
	}
	if other := fmt.Errorf("x: %w", unix.ENOSPC); permissionError(other) {
		t.Errorf("permissionError(%v) = true, want false", other)
	}
}
