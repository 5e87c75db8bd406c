package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/test/bundle"
)

// TestUserNamespace runs a container in a new user namespace (with a new
// cgroup namespace, which changes how the init enters its cgroups): the
// maps are written as configured and the process is root inside it.
func TestUserNamespace(t *testing.T) {
	for _, withCgroupNS := range []bool{false, true} {
		name := "plain"
		if withCgroupNS {
			name = "cgroupns"
		}
		t.Run(name, func(t *testing.T) {
			b := bundle.New(t, bundle.Args("/bin/sh", "-c", "cat /proc/self/uid_map /proc/self/gid_map; id -u"), func(s *specs.Spec) {
				s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				if withCgroupNS {
					s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.CgroupNamespace})
				}
				s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
				s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
			})
			// t.TempDir makes 0700 directories: let the container's
			// unprivileged host uid reach the rootfs.
			for d := b.Dir; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
				if err := os.Chmod(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			out := RunOutput(t, b)
			fields := strings.Fields(out)
			want := []string{"0", "100000", "65536", "0", "100000", "65536", "0"}
			if strings.Join(fields, " ") != strings.Join(want, " ") {
				t.Errorf("uid_map, gid_map, id -u = %q, want %q", fields, want)
			}
		})
	}
}
