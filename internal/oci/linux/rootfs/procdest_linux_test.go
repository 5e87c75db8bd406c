package rootfs

import (
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// The /proc rule on resolved mount destinations (checkProcTarget): a
// destination that an image symlink, or a second procfs, leads into procfs
// is refused unless it is a proc mount on /proc or a bind onto one of
// procBindable in the procfs on /proc. The scenarios run in
// TestRootScenarios as "procdest-*".

// symlinks makes each link (a path in dir/rootfs; an empty directory
// there is replaced) a symlink to its target, and writes dir/fake.
func symlinks(links map[string]string) func(dir string) error {
	return func(dir string) error {
		for link, target := range links {
			p := filepath.Join(dir, "rootfs", link)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			os.Remove(p)
			if err := os.Symlink(target, p); err != nil {
				return err
			}
		}
		return os.WriteFile(filepath.Join(dir, "fake"), []byte("fake"), 0o644)
	}
}

// bindFake is a bind mount of the scenario's dir/fake file on dest.
func bindFake(dest string) specs.Mount {
	return specs.Mount{Destination: dest, Type: "bind", Source: "fake", Options: []string{"bind", "ro"}}
}

var procMount = specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"}

func init() {
	refused := func(links map[string]string, wants []string, mounts ...specs.Mount) scenario {
		return scenario{
			setup:   symlinks(links),
			config:  func(dir string) *Config { return baseConfig(dir, append([]specs.Mount{procMount}, mounts...)...) },
			wantErr: wants,
		}
	}
	// What gantryd's /etc/hosts bind becomes with an image whose
	// /etc/hosts is a symlink into /proc.
	scenarios["procdest-bind-symlink"] = refused(map[string]string{"etc/hosts": "/proc/sys/kernel/core_pattern"},
		[]string{`mounts[1] (destination "/etc/hosts"): destination resolves into procfs (/proc/sys/kernel/core_pattern): refused: only a proc mount on /proc, or a bind mount onto /proc/cpuinfo,`},
		bindFake("/etc/hosts"))
	// The same through a relative link and a symlinked parent directory.
	scenarios["procdest-bind-symlink-parent"] = refused(map[string]string{"etc/k": "../proc/sys/kernel"},
		[]string{`mounts[1] (destination "/etc/k/core_pattern")`, "procfs (/proc/sys/kernel/core_pattern): refused"},
		bindFake("/etc/k/core_pattern"))
	// A regular file of procfs not on the list, named as it is.
	scenarios["procdest-bind-literal"] = refused(nil,
		[]string{`mounts[1] (destination "/proc/sys/kernel/core_pattern")`, "procfs (/proc/sys/kernel/core_pattern): refused"},
		bindFake("/proc/sys/kernel/core_pattern"))
	// CVE-2019-16884: the LSM attribute files.
	scenarios["procdest-bind-attr"] = refused(nil,
		[]string{`mounts[1] (destination "/proc/self/attr/exec")`, "procfs (/proc/", "/attr/exec): refused"},
		bindFake("/proc/self/attr/exec"))
	scenarios["procdest-tmpfs-symlink"] = refused(map[string]string{"etc/sysctl": "/proc/sys"},
		[]string{`mounts[1] (destination "/etc/sysctl"): mount tmpfs: destination resolves into procfs (/proc/sys): refused`},
		specs.Mount{Destination: "/etc/sysctl", Type: "tmpfs", Source: "tmpfs"})
	// A second procfs, not on /proc: a prefix check of the resolved path
	// would let both through; the list is of the procfs on /proc only.
	other := specs.Mount{Destination: "/hostproc", Type: "proc", Source: "proc"}
	scenarios["procdest-other-procfs"] = refused(nil,
		[]string{`mounts[2] (destination "/hostproc/sys/kernel/core_pattern")`, "procfs (/hostproc/sys/kernel/core_pattern): refused"},
		other, bindFake("/hostproc/sys/kernel/core_pattern"))
	scenarios["procdest-other-procfs-listed"] = refused(nil,
		[]string{`mounts[2] (destination "/hostproc/cpuinfo")`, "procfs (/hostproc/cpuinfo): refused"},
		other, bindFake("/hostproc/cpuinfo"))
	// A device bound from the host in a user namespace is a bind mount too.
	scenarios["procdest-device-userns"] = scenario{
		setup: symlinks(map[string]string{"dev": "/proc"}),
		config: func(dir string) *Config {
			c := baseConfig(dir, procMount)
			c.UserNS = true
			c.Spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/kmsg", Type: "c", Major: 1, Minor: 11}}
			return c
		},
		wantErr: []string{`linux.devices[0] (/dev/kmsg): destination resolves into procfs (/proc/kmsg): refused`},
	}

	// The listed files, by their own names and through an image symlink;
	// the masked and read-only paths, a different code path, still apply.
	// (Not /proc/net/dev: the kernel revalidates /proc/net entries on
	// every lookup, which detaches a mount on one.)
	scenarios["procdest-allowed"] = scenario{
		setup: symlinks(map[string]string{"etc/meminfo": "/proc/meminfo"}),
		config: func(dir string) *Config {
			c := baseConfig(dir, procMount,
				specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
				bindFake("/proc/cpuinfo"), bindFake("/proc/sys/kernel/ns_last_pid"), bindFake("/etc/meminfo"))
			c.Spec.Linux.MaskedPaths = []string{"/proc/version", "/proc/keys", "/proc/acpi"}
			c.Spec.Linux.ReadonlyPaths = []string{"/proc/sys"}
			return c
		},
		check: func(c *Config) error {
			var ck checker
			for _, p := range []string{"/proc/cpuinfo", "/proc/sys/kernel/ns_last_pid", "/proc/meminfo", "/etc/meminfo"} {
				ck.content(p, "fake")
			}
			ck.content("/proc/version", "")
			ck.content("/proc/keys", "")
			ck.fsType("/proc/acpi", unix.TMPFS_MAGIC)
			ck.readOnly("/proc/sys", true)
			ck.writeFails("/proc/sys/kernel/hostname", unix.EROFS)
			return ck.err()
		},
	}
}
