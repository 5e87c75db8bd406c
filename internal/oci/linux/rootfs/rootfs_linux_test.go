package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Root tests re-execute the test binary into a new mount namespace (see
// runScenario); the child runs one scenario (Prepare, PivotRoot, Finalize,
// then checks from inside the new root) and reports on stdout and its exit
// status.
const (
	childEnv = "GANTRY_ROOTFS_TEST_CHILD"
	dirEnv   = "GANTRY_ROOTFS_TEST_DIR"
)

func TestMain(m *testing.M) {
	if name := os.Getenv(childEnv); name != "" {
		os.Exit(runChild(name, os.Getenv(dirEnv)))
	}
	os.Exit(m.Run())
}

// scenario is one root test. dir holds rootfs/ (the root filesystem) and
// anything else the scenario needs outside of it.
type scenario struct {
	setup      func(dir string) error         // on the host, before the child starts
	config     func(dir string) *Config       // in the child (and the parent)
	prepared   func(c *Config) error          // in the child, after Prepare, before PivotRoot
	check      func(c *Config) error          // in the child, in the new root, after Finalize
	wantErr    []string                       // Prepare must fail with all of these substrings
	cloneflags uintptr                        // beyond CLONE_NEWNS
	after      func(t *testing.T, dir string) // on the host, after the child exited
	skip       func() string                  // reason to skip, or ""
}

var scenarios = map[string]scenario{}

const mqueueMagic = 0x19800202

func runChild(name, dir string) int {
	sc, ok := scenarios[name]
	if !ok {
		fmt.Printf("unknown scenario %q\n", name)
		return 2
	}
	c := sc.config(dir)
	err := Prepare(c)
	if len(sc.wantErr) > 0 {
		if err == nil {
			fmt.Println("FAIL: Prepare succeeded, want an error")
			return 1
		}
		for _, w := range sc.wantErr {
			if !strings.Contains(err.Error(), w) {
				fmt.Printf("FAIL: Prepare error %q does not contain %q\n", err, w)
				return 1
			}
		}
		fmt.Printf("OK (refused: %v)\n", err)
		return 0
	}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"Prepare", func() error { return err }},
		{"prepared check", func() error {
			if sc.prepared != nil {
				return sc.prepared(c)
			}
			return nil
		}},
		{"PivotRoot", func() error { return PivotRoot(c) }},
		{"Finalize", func() error { return Finalize(c) }},
		{"check", func() error { return sc.check(c) }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			fmt.Printf("FAIL: %s: %v\n", s.name, err)
			return 1
		}
	}
	fmt.Println("OK")
	return 0
}

// newRootfs makes dir/rootfs with a few directories and a copy of busybox.
func newRootfs(dir string) error {
	rootfs := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "proc", "sys", "dev", "tmp", "data"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			return err
		}
	}
	in, err := os.Open("/bin/busybox")
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(filepath.Join(rootfs, "bin", "busybox"), os.O_CREATE|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func runScenario(t *testing.T, name string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	sc := scenarios[name]
	if sc.skip != nil {
		if why := sc.skip(); why != "" {
			t.Skip(why)
		}
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("needs /bin/busybox")
	}
	dir := t.TempDir()
	if err := newRootfs(dir); err != nil {
		t.Fatalf("make rootfs: %v", err)
	}
	if sc.setup != nil {
		if err := sc.setup(dir); err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, dirEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS | sc.cloneflags, Pdeathsig: syscall.SIGKILL}
	if sc.cloneflags&syscall.CLONE_NEWUSER != 0 {
		cmd.SysProcAttr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
		cmd.SysProcAttr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 65536}}
	}
	if sc.after != nil {
		t.Cleanup(func() { sc.after(t, dir) })
	}
	err := cmd.Run()
	if err != nil || !strings.Contains(out.String(), "OK") {
		t.Fatalf("scenario %s: %v\n%s", name, err, out.String())
	}
	t.Log(strings.TrimSpace(out.String()))
}

func baseConfig(dir string, mounts ...specs.Mount) *Config {
	return &Config{
		Spec: &specs.Spec{
			Root:   &specs.Root{Path: "rootfs"},
			Mounts: mounts,
			Linux:  &specs.Linux{},
		},
		Rootfs: filepath.Join(dir, "rootfs"),
		Bundle: dir,
	}
}

// --- checks used from inside the container ---

type checker struct{ errs []string }

func (c *checker) errorf(format string, args ...any) {
	c.errs = append(c.errs, fmt.Sprintf(format, args...))
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return errors.New(strings.Join(c.errs, "; "))
}

func (c *checker) fsType(path string, want int64) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		c.errorf("statfs %s: %v", path, err)
	} else if sfs.Type != want {
		c.errorf("%s: fs type %#x, want %#x", path, sfs.Type, want)
	}
}

func (c *checker) readOnly(path string, want bool) {
	var sfs unix.Statfs_t
	if err := unix.Statfs(path, &sfs); err != nil {
		c.errorf("statfs %s: %v", path, err)
	} else if got := sfs.Flags&unix.ST_RDONLY != 0; got != want {
		c.errorf("%s: read-only %v, want %v", path, got, want)
	}
}

func (c *checker) writeFails(path string, want error) {
	err := os.WriteFile(path, []byte("x"), 0o644)
	if !errors.Is(err, want) {
		c.errorf("write %s: got %v, want %v", path, err, want)
	}
}

func (c *checker) content(path, want string) {
	b, err := os.ReadFile(path)
	if err != nil {
		c.errorf("read %s: %v", path, err)
	} else if string(b) != want {
		c.errorf("%s: content %q, want %q", path, b, want)
	}
}

func (c *checker) absent(path string) {
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		c.errorf("%s: want not to exist, lstat: %v", path, err)
	}
}

func (c *checker) device(path string, typ uint32, major, minor uint32, perm uint32, uid, gid uint32) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		c.errorf("lstat %s: %v", path, err)
		return
	}
	if st.Mode&unix.S_IFMT != typ || st.Mode&0o7777 != perm || st.Uid != uid || st.Gid != gid {
		c.errorf("%s: mode %o uid %d gid %d, want type %o perm %o uid %d gid %d", path, st.Mode, st.Uid, st.Gid, typ, perm, uid, gid)
	}
	if typ != unix.S_IFIFO && (unix.Major(st.Rdev) != major || unix.Minor(st.Rdev) != minor) {
		c.errorf("%s: device %d:%d, want %d:%d", path, unix.Major(st.Rdev), unix.Minor(st.Rdev), major, minor)
	}
}

func (c *checker) link(path, want string) {
	got, err := os.Readlink(path)
	if err != nil || got != want {
		c.errorf("readlink %s = %q, %v; want %q", path, got, err, want)
	}
}

// mountinfoHas checks that the mountinfo line of mountpoint holds s.
func (c *checker) mountinfoHas(mountpoint, s string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		c.errorf("read mountinfo: %v", err)
		return
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == mountpoint {
			if !strings.Contains(line, s) {
				c.errorf("mount %s: %q lacks %q", mountpoint, line, s)
			}
			return
		}
	}
	c.errorf("mount %s not found", mountpoint)
}

// checkNewRoot verifies the process sees the container root only.
func (c *checker) checkNewRoot() {
	if wd, err := os.Getwd(); err != nil || wd != "/" {
		c.errorf("cwd = %q, %v; want /", wd, err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		c.errorf("rootfs /bin/busybox: %v", err)
	}
	cmd := exec.Command("/bin/busybox", "echo", "hello")
	cmd.Stdin = strings.NewReader("") // the rootfs may have no /dev/null
	if out, err := cmd.Output(); err != nil || string(out) != "hello\n" {
		c.errorf("run /bin/busybox in the new root: %q, %v", out, err)
	}
	// The host's Go tree, the test binary and the host root must be gone.
	c.absent("/usr/local/go")
	c.absent(os.Args[0])
	if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) > 4 && strings.HasPrefix(f[4], "/usr/local") {
				c.errorf("host mount visible: %s", line)
			}
		}
	}
}

// --- scenarios ---

// escapeName is a name unique to one run of the escape scenario.
func escapeName(dir string) string {
	return "gantry-escape-" + filepath.Base(filepath.Dir(dir))
}

func init() {
	scenarios["escape"] = scenario{
		setup: func(dir string) error {
			rootfs := filepath.Join(dir, "rootfs")
			if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "src", "marker"), []byte("in"), 0o644); err != nil {
				return err
			}
			for name, target := range map[string]string{"evil1": "/", "evil2": "../../..", "evil3": "/../../etc", "data/evil4": "../../../../../tmp"} {
				if err := os.Symlink(target, filepath.Join(rootfs, name)); err != nil {
					return err
				}
			}
			return nil
		},
		config: func(dir string) *Config {
			name := escapeName(dir)
			return baseConfig(dir,
				specs.Mount{Destination: "/evil1/" + name + "-a", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/evil2/" + name + "-b", Type: "bind", Source: filepath.Join(dir, "src"), Options: []string{"bind"}},
				specs.Mount{Destination: "/evil3/" + name + "-c", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/data/evil4/" + name + "-d", Type: "tmpfs", Source: "tmpfs"},
				specs.Mount{Destination: "/../../" + name + "-e", Type: "tmpfs", Source: "tmpfs"},
			)
		},
		prepared: func(c *Config) error {
			var ck checker
			name := escapeName(filepath.Dir(c.Rootfs))
			for _, p := range []string{"/" + name + "-a", "/" + name + "-b", "/etc/" + name + "-c", "/tmp/" + name + "-d", "/" + name + "-e"} {
				ck.absent(p)
			}
			ck.fsType(filepath.Join(c.Rootfs, name+"-a"), unix.TMPFS_MAGIC)
			ck.content(filepath.Join(c.Rootfs, name+"-b", "marker"), "in")
			ck.fsType(filepath.Join(c.Rootfs, "etc", name+"-c"), unix.TMPFS_MAGIC)
			ck.fsType(filepath.Join(c.Rootfs, "tmp", name+"-d"), unix.TMPFS_MAGIC)
			ck.fsType(filepath.Join(c.Rootfs, name+"-e"), unix.TMPFS_MAGIC)
			return ck.err()
		},
		check: func(c *Config) error {
			var ck checker
			ck.checkNewRoot()
			return ck.err()
		},
		after: func(t *testing.T, dir string) {
			name := escapeName(dir)
			for _, p := range []string{"/" + name + "-a", "/" + name + "-b", "/etc/" + name + "-c", "/tmp/" + name + "-d", "/" + name + "-e"} {
				if _, err := os.Lstat(p); err == nil {
					os.Remove(p)
					t.Errorf("%s was created on the host", p)
				}
			}
		},
	}

	scenarios["mounts"] = scenario{
		setup: func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, "src", "hello"), []byte("hi"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "file"), []byte("file"), 0o644)
		},
		config: func(dir string) *Config {
			c := baseConfig(dir,
				specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"},
				specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
				specs.Mount{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
				specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
				specs.Mount{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
				specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
				specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
				specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=1777", "size=65536k"}},
				specs.Mount{Destination: "/mnt/ro", Type: "bind", Source: "src", Options: []string{"rbind", "ro", "nosuid"}},
				specs.Mount{Destination: "/etc/bindfile", Source: filepath.Join(dir, "file"), Options: []string{"bind", "ro"}},
				specs.Mount{Destination: "/mnt/rro", Source: "/work/../" + dir + "/src", Options: []string{"rbind", "rro", "rshared"}},
			)
			c.Spec.Linux.Devices = []specs.LinuxDevice{
				{Path: "/dev/mydev", Type: "c", Major: 1, Minor: 5, FileMode: fm(0o640), UID: u32(1000), GID: u32(1001)},
				{Path: "/dev/myblk", Type: "b", Major: 7, Minor: 0, FileMode: fm(0o600)},
				{Path: "/dev/fifo", Type: "p", FileMode: fm(0o620)},
				{Path: "/dev/full", Type: "c", Major: 1, Minor: 3, FileMode: fm(0o600)}, // overrides the default
			}
			return c
		},
		check: func(c *Config) error {
			var ck checker
			ck.checkNewRoot()
			ck.fsType("/proc", unix.PROC_SUPER_MAGIC)
			if _, err := os.Readlink("/proc/self/exe"); err != nil {
				ck.errorf("readlink /proc/self/exe: %v", err)
			}
			ck.fsType("/sys", unix.SYSFS_MAGIC)
			ck.readOnly("/sys", true)
			ck.fsType("/sys/fs/cgroup", unix.TMPFS_MAGIC)
			ck.readOnly("/sys/fs/cgroup", true)
			if _, err := os.Stat("/sys/fs/cgroup/memory"); err == nil {
				ck.fsType("/sys/fs/cgroup/memory", unix.CGROUP_SUPER_MAGIC)
				ck.readOnly("/sys/fs/cgroup/memory", true)
				if _, err := os.Stat("/sys/fs/cgroup/memory/memory.limit_in_bytes"); err != nil {
					ck.errorf("cgroup memory files: %v", err)
				}
			} else if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
				ck.errorf("no cgroup v1 memory hierarchy and no cgroup v2 files: %v", err)
			}
			ck.fsType("/dev", unix.TMPFS_MAGIC)
			ck.fsType("/dev/pts", unix.DEVPTS_SUPER_MAGIC)
			ck.fsType("/dev/shm", unix.TMPFS_MAGIC)
			ck.fsType("/dev/mqueue", mqueueMagic)
			ck.fsType("/tmp", unix.TMPFS_MAGIC)
			var sfs unix.Statfs_t
			if err := unix.Statfs("/tmp", &sfs); err == nil {
				if size := sfs.Blocks * uint64(sfs.Bsize); size != 64<<20 {
					ck.errorf("/tmp size %d, want %d", size, 64<<20)
				}
				if sfs.Flags&unix.ST_NOSUID == 0 {
					ck.errorf("/tmp not nosuid")
				}
			}
			if st, err := os.Stat("/tmp"); err != nil || st.Mode()&os.ModePerm != 0o777 || st.Mode()&os.ModeSticky == 0 {
				ck.errorf("/tmp mode: %v, %v", st.Mode(), err)
			}
			ck.content("/mnt/ro/hello", "hi")
			ck.readOnly("/mnt/ro", true)
			ck.writeFails("/mnt/ro/new", unix.EROFS)
			ck.content("/etc/bindfile", "file")
			ck.writeFails("/etc/bindfile", unix.EROFS)
			ck.content("/mnt/rro/hello", "hi")
			ck.writeFails("/mnt/rro/new", unix.EROFS)
			ck.mountinfoHas("/mnt/rro", "shared:")

			ck.device("/dev/null", unix.S_IFCHR, 1, 3, 0o666, 0, 0)
			ck.device("/dev/zero", unix.S_IFCHR, 1, 5, 0o666, 0, 0)
			ck.device("/dev/urandom", unix.S_IFCHR, 1, 9, 0o666, 0, 0)
			ck.device("/dev/tty", unix.S_IFCHR, 5, 0, 0o666, 0, 0)
			ck.device("/dev/full", unix.S_IFCHR, 1, 3, 0o600, 0, 0)
			ck.device("/dev/mydev", unix.S_IFCHR, 1, 5, 0o640, 1000, 1001)
			ck.device("/dev/myblk", unix.S_IFBLK, 7, 0, 0o600, 0, 0)
			ck.device("/dev/fifo", unix.S_IFIFO, 0, 0, 0o620, 0, 0)
			ck.link("/dev/ptmx", "pts/ptmx")
			ck.link("/dev/fd", "/proc/self/fd")
			ck.link("/dev/stdin", "/proc/self/fd/0")
			ck.link("/dev/stderr", "/proc/self/fd/2")
			ck.link("/dev/core", "/proc/kcore")
			if _, err := os.Stat("/dev/pts/ptmx"); err != nil {
				ck.errorf("devpts ptmx: %v", err)
			}
			if err := os.WriteFile("/dev/null", []byte("x"), 0); err != nil {
				ck.errorf("write /dev/null: %v", err)
			}
			return ck.err()
		},
	}

	maskConfig := func(dir string) *Config {
		c := baseConfig(dir,
			specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"},
			specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
			specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"},
			specs.Mount{Destination: "/data/rodir/sub", Type: "tmpfs", Source: "tmpfs"},
		)
		c.Spec.Root.Readonly = true
		c.Spec.Linux.MaskedPaths = []string{"/proc/kcore", "/proc/version", "/proc/acpi", "/proc/does-not-exist", "/data/secretdir", "/data/secret.txt", "/nope/nope"}
		c.Spec.Linux.ReadonlyPaths = []string{"/proc/sys", "/proc/sysrq-trigger", "/data/rodir", "/missing"}
		c.Spec.Linux.RootfsPropagation = "rshared"
		return c
	}
	scenarios["masked"] = scenario{
		setup: func(dir string) error {
			data := filepath.Join(dir, "rootfs", "data")
			for _, d := range []string{"secretdir", "rodir"} {
				if err := os.MkdirAll(filepath.Join(data, d), 0o755); err != nil {
					return err
				}
			}
			if err := os.WriteFile(filepath.Join(data, "secretdir", "key"), []byte("k"), 0o644); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(data, "rodir", "f"), []byte("f"), 0o644); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(data, "secret.txt"), []byte("secret"), 0o644)
		},
		config: maskConfig,
		check: func(c *Config) error {
			var ck checker
			ck.checkNewRoot()
			ck.content("/data/secret.txt", "")
			ck.writeFails("/data/secret.txt", nil) // writes to /dev/null succeed and vanish
			ck.content("/data/secret.txt", "")
			ck.content("/proc/version", "")
			if ents, err := os.ReadDir("/data/secretdir"); err != nil || len(ents) != 0 {
				ck.errorf("masked dir /data/secretdir: %d entries, %v", len(ents), err)
			}
			ck.readOnly("/data/secretdir", true)
			ck.writeFails("/data/secretdir/new", unix.EROFS)
			ck.content("/data/rodir/f", "f")
			ck.writeFails("/data/rodir/new", unix.EROFS)
			ck.readOnly("/data/rodir/sub", true) // submounts are read-only too
			ck.readOnly("/proc/sys", true)
			ck.writeFails("/proc/sys/kernel/hostname", unix.EROFS)
			ck.readOnly("/", true)
			ck.writeFails("/newfile", unix.EROFS)
			ck.mountinfoHas("/", "shared:")
			if err := os.WriteFile("/tmp/ok", []byte("x"), 0o644); err != nil {
				ck.errorf("/tmp should stay writable: %v", err)
			}
			return ck.err()
		},
	}

	scenarios["nopivot"] = scenario{
		config: func(dir string) *Config {
			c := baseConfig(dir, specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"})
			c.NoPivot = true
			return c
		},
		check: func(c *Config) error {
			var ck checker
			ck.checkNewRoot()
			ck.fsType("/proc", unix.PROC_SUPER_MAGIC)
			// Only the container's mounts are left in the namespace.
			if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
				for _, m := range parseMountInfo(string(b)) {
					if m.mountpoint == "/sys" || m.mountpoint == "/dev/shm" {
						ck.errorf("host mount %s still attached", m.mountpoint)
					}
				}
			}
			return ck.err()
		},
	}

	scenarios["pivot"] = scenario{
		config: func(dir string) *Config {
			return baseConfig(dir, specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"})
		},
		check: func(c *Config) error {
			var ck checker
			ck.checkNewRoot()
			if b, err := os.ReadFile("/proc/self/mountinfo"); err == nil {
				ms := parseMountInfo(string(b))
				var points []string
				for _, m := range ms {
					points = append(points, m.mountpoint)
				}
				sort.Strings(points)
				if strings.Join(points, " ") != "/ /proc" {
					ck.errorf("mounts after pivot_root: %q, want only / and /proc", points)
				}
			} else {
				ck.errorf("read mountinfo: %v", err)
			}
			return ck.err()
		},
	}

	refuse := func(wants []string, mounts ...specs.Mount) scenario {
		return scenario{
			setup: func(dir string) error {
				if err := os.Symlink("/proc", filepath.Join(dir, "rootfs", "myproc")); err != nil {
					return err
				}
				return os.WriteFile(filepath.Join(dir, "cpuinfo"), []byte("fake"), 0o644)
			},
			config: func(dir string) *Config {
				return baseConfig(dir, append([]specs.Mount{{Destination: "/proc", Type: "proc", Source: "proc"}}, mounts...)...)
			},
			wantErr: wants,
		}
	}
	scenarios["proc-tmpfs"] = refuse([]string{"mounts[1]", "/proc/foo"}, specs.Mount{Destination: "/proc/foo", Type: "tmpfs", Source: "tmpfs"})
	scenarios["proc-bind-dir"] = refuse([]string{"mounts[1]", "/proc/sys"}, specs.Mount{Destination: "/proc/sys", Type: "bind", Source: "/tmp", Options: []string{"rbind"}})
	scenarios["proc-via-symlink"] = refuse([]string{"mounts[1]", "/myproc/sys", "procfs"}, specs.Mount{Destination: "/myproc/sys", Type: "tmpfs", Source: "tmpfs"})
	scenarios["proc-not-proc"] = refuse([]string{"mounts[1]", "/proc"}, specs.Mount{Destination: "/proc", Type: "tmpfs", Source: "tmpfs"})
	scenarios["proc-magic-link"] = refuse([]string{"mounts[1]", "/proc/self/exe"}, specs.Mount{Destination: "/proc/self/exe", Type: "bind", Source: "cpuinfo", Options: []string{"bind"}})
	scenarios["missing-source"] = refuse([]string{"mounts[1].source", "no-such-dir"}, specs.Mount{Destination: "/mnt", Type: "bind", Source: "no-such-dir", Options: []string{"bind"}})

	scenarios["sysfs-symlink"] = scenario{
		setup: func(dir string) error {
			rootfs := filepath.Join(dir, "rootfs")
			if err := os.MkdirAll(filepath.Join(rootfs, "realsys"), 0o755); err != nil {
				return err
			}
			return os.Symlink("/realsys", filepath.Join(rootfs, "linksys"))
		},
		config: func(dir string) *Config {
			return baseConfig(dir, specs.Mount{Destination: "/linksys", Type: "sysfs", Source: "sysfs"})
		},
		wantErr: []string{"mounts[0]", "ordinary directory"},
	}

	scenarios["proc-bind-file"] = scenario{
		setup: func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "cpuinfo"), []byte("fake cpuinfo"), 0o644)
		},
		config: func(dir string) *Config {
			return baseConfig(dir,
				specs.Mount{Destination: "/proc", Type: "proc", Source: "proc"},
				specs.Mount{Destination: "/proc/cpuinfo", Type: "bind", Source: "cpuinfo", Options: []string{"bind", "ro"}},
			)
		},
		check: func(c *Config) error {
			var ck checker
			ck.content("/proc/cpuinfo", "fake cpuinfo")
			return ck.err()
		},
	}

	scenarios["userns"] = scenario{
		cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID,
		config: func(dir string) *Config {
			c := baseConfig(dir,
				specs.Mount{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "nodev", "noexec"}},
				specs.Mount{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "mode=755"}},
				specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			)
			c.UserNS = true
			c.Spec.Linux.MaskedPaths = []string{"/proc/version"}
			c.Spec.Linux.ReadonlyPaths = []string{"/proc/sys"}
			return c
		},
		check: func(c *Config) error {
			var ck checker
			ck.checkNewRoot()
			ck.fsType("/sys", unix.SYSFS_MAGIC)
			ck.readOnly("/sys", true)
			ck.fsType("/proc", unix.PROC_SUPER_MAGIC)
			var st unix.Stat_t
			if err := unix.Stat("/dev/null", &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != unix.Mkdev(1, 3) {
				ck.errorf("/dev/null in user namespace: mode %o rdev %d, %v", st.Mode, st.Rdev, err)
			}
			if err := os.WriteFile("/dev/zero", []byte("x"), 0); err != nil {
				ck.errorf("write bound /dev/zero: %v", err)
			}
			ck.content("/proc/version", "")
			ck.readOnly("/proc/sys", true)
			return ck.err()
		},
	}

	scenarios["idmap"] = scenario{
		setup: func(dir string) error {
			if err := os.MkdirAll(filepath.Join(dir, "src"), 0o755); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, "src", "f"), []byte("x"), 0o644)
		},
		config: func(dir string) *Config {
			ids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
			return baseConfig(dir, specs.Mount{Destination: "/mnt", Type: "bind", Source: "src", Options: []string{"bind", "idmap"}, UIDMappings: ids, GIDMappings: ids})
		},
		check: func(c *Config) error {
			var ck checker
			var st unix.Stat_t
			if err := unix.Stat("/mnt/f", &st); err != nil {
				ck.errorf("stat /mnt/f: %v", err)
			} else if st.Uid != 1000 || st.Gid != 1000 {
				ck.errorf("idmapped /mnt/f owned by %d:%d, want 1000:1000", st.Uid, st.Gid)
			}
			return ck.err()
		},
	}
}

func TestRootScenarios(t *testing.T) {
	var names []string
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t.Run(n, func(t *testing.T) { runScenario(t, n) })
	}
}
