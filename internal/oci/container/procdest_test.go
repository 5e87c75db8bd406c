package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The /proc rule on mount destinations (rootfs checkProcTarget), end to
// end: a config mount that the image's symlinks lead into the container's
// procfs fails the create and leaves nothing behind; binds onto the
// lxcfs-style files still work, and so do the masked and read-only paths.

// etcBind is a bind mount of a host file with the options gantryd gives
// /etc/hosts, /etc/hostname and /etc/resolv.conf.
func etcBind(t *testing.T, dest, content string) specs.Mount {
	t.Helper()
	src := filepath.Join(t.TempDir(), filepath.Base(dest))
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return specs.Mount{Destination: dest, Type: "bind", Source: src, Options: []string{"rbind", "rprivate", "nosuid", "nodev", "rw"}}
}

func TestRootMountIntoProcfsRefused(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		name  string
		link  [2]string // a symlink in the rootfs: path, target
		mount specs.Mount
		want  string
	}{
		{"bind via symlink", [2]string{"etc/hosts", "/proc/sys/kernel/core_pattern"}, etcBind(t, "/etc/hosts", "127.0.0.1 localhost\n"),
			`(destination "/etc/hosts"): destination resolves into procfs (/proc/sys/kernel/core_pattern): refused: only a proc mount on /proc, or a bind mount onto /proc/cpuinfo, `},
		{"tmpfs via symlink", [2]string{"etc/sysctl", "/proc/sys"}, specs.Mount{Destination: "/etc/sysctl", Type: "tmpfs", Source: "tmpfs"},
			`(destination "/etc/sysctl"): mount tmpfs: destination resolves into procfs (/proc/sys): refused: `},
	} {
		for _, verb := range []string{"create", "run"} {
			t.Run(tc.name+"/"+verb, func(t *testing.T) {
				rr := *r
				rr.t = t
				c, bundle := rr.newBundle(func(s *specs.Spec) { s.Mounts = append(s.Mounts, tc.mount) }, nil, "/bin/true")
				rootfs := filepath.Join(bundle, "rootfs")
				if err := os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(tc.link[1], filepath.Join(rootfs, tc.link[0])); err != nil {
					t.Fatal(err)
				}
				rr.fails([]string{verb, "--bundle", bundle, c.id}, "gantry-oci: mounts[", tc.want, "invalid argument")
				rr.nothingLeft(c, rootfs)
			})
		}
	}
}

// nothingLeft checks that a failed create of c left no state entry,
// cgroup, process or mount.
func (r *rt) nothingLeft(c *ctr, rootfs string) {
	t := r.t
	t.Helper()
	if out := strings.TrimSpace(r.ok("list", "-q")); out != "" {
		t.Errorf("list -q = %q, want none", out)
	}
	if _, err := os.Lstat(filepath.Join(r.root, c.id)); err == nil {
		t.Errorf("state entry %s left behind", filepath.Join(r.root, c.id))
	}
	cgs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", "*", strings.TrimPrefix(c.cgroup, "/")))
	if cg := filepath.Join("/sys/fs/cgroup", c.cgroup); exists(cg) {
		cgs = append(cgs, cg)
	}
	for _, d := range cgs {
		t.Errorf("cgroup %s left behind", d)
		os.Remove(d)
	}
	roots, _ := filepath.Glob("/proc/[0-9]*/root")
	for _, p := range roots {
		if root, err := os.Readlink(p); err == nil && strings.HasPrefix(root, rootfs) {
			t.Errorf("process %s left behind, rooted in %s", filepath.Dir(p), root)
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), " "+rootfs) {
		t.Errorf("a mount under %s is left in the host's mount namespace", rootfs)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// TestRootMountOntoProcAllowed: binds onto files of the allow-list, by
// name and through a symlink of the image, work, with the default config's
// masked and read-only paths (/dev/null or an empty tmpfs over /proc
// entries, made by Finalize, not through the mount entries).
func TestRootMountOntoProcAllowed(t *testing.T) {
	r := newRT(t)
	cpuinfo := etcBind(t, "/proc/cpuinfo", "fake cpuinfo\n")
	meminfo := etcBind(t, "/etc/meminfo", "fake meminfo\n")
	c, bundle := r.newBundle(func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, cpuinfo, meminfo)
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/proc/version")
	}, nil, "/bin/sh", "-c",
		`cat /proc/cpuinfo /proc/meminfo; wc -c < /proc/version; wc -c < /proc/keys; ls -A /proc/acpi | wc -l
		echo x > /proc/sys/kernel/hostname || echo read-only`)
	if err := os.MkdirAll(filepath.Join(bundle, "rootfs", "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc/meminfo", filepath.Join(bundle, "rootfs", "etc", "meminfo")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, _, code := r.run("state", c.id); code == 0 {
			r.remove(c)
		}
	})
	out, serr, code := r.run("run", "--bundle", bundle, c.id)
	want := "fake cpuinfo\nfake meminfo\n0\n0\n0\nread-only\n"
	if code != 0 || out != want {
		t.Errorf("run: exit %d, stdout %q, stderr %q; want 0, %q", code, out, serr, want)
	}
}
