package containers

import (
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/specgen"
)

// TestPrivilegedHostDevices: a --privileged container has the host's
// device nodes in its /dev (docker's --privileged), an unprivileged one
// only the default ones.
func TestPrivilegedHostDevices(t *testing.T) {
	e := newEnv(t)
	host, err := specgen.HostDevices("/dev")
	if err != nil {
		t.Fatal(err)
	}
	out := e.mustGantry("run", "--rm", "--privileged", "busybox", "find", "/dev", "-type", "c", "-o", "-type", "b")
	seen := map[string]bool{}
	for _, l := range strings.Fields(out) {
		seen[l] = true
	}
	for _, d := range host {
		if !seen[d.Path] {
			t.Errorf("--privileged: host device %s (%s %d:%d) missing from the container's /dev", d.Path, d.Type, d.Major, d.Minor)
		}
	}
	out = e.mustGantry("run", "--rm", "busybox", "find", "/dev", "-type", "c", "-o", "-type", "b")
	if n := len(strings.Fields(out)); n > 10 {
		t.Errorf("unprivileged: %d device nodes in /dev, want only the defaults:\n%s", n, out)
	}
	e.assertClean()
}
