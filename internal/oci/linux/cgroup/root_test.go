package cgroup

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

func uniqueName(t *testing.T) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return "gantry-test-" + hex.EncodeToString(b)
}

// startSleeper starts a child that sleeps; cleanup kills it.
func startSleeper(t *testing.T, attr *syscall.SysProcAttr) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("/bin/busybox", "sleep", "100")
	cmd.SysProcAttr = attr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sleeper: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return cmd
}

func readT(t *testing.T, dir, file string) string {
	t.Helper()
	s, err := readFile(dir, file)
	if err != nil {
		t.Fatalf("read %s: %v", file, err)
	}
	return s
}

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func bptr(v bool) *bool    { return &v }
func u32(v uint32) *uint32 { return &v }

// v1DeviceAllowed evaluates a v1 devices.list (an allow list after "deny a").
func v1DeviceAllowed(list string, typ byte, major, minor int, acc string) bool {
	for _, line := range strings.Split(list, "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		if f[0] != "a" && f[0][0] != typ {
			continue
		}
		maj, min, _ := strings.Cut(f[1], ":")
		if maj != "*" && maj != itoa(int64(major)) || min != "*" && min != itoa(int64(minor)) {
			continue
		}
		ok := true
		for _, c := range acc {
			if !strings.ContainsRune(f[2], c) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func TestManagerLifecycleRoot(t *testing.T) {
	requireRoot(t)
	mode, err := DetectMode()
	if err != nil {
		t.Skipf("no cgroups: %v", err)
	}
	if mode == Unified {
		t.Skip("this test is written for v1/hybrid hosts")
	}
	name := "/" + uniqueName(t)
	mgr, err := New(name, "ignored")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	paths := mgr.Paths()
	if mgr.Exists() {
		t.Fatalf("Exists before Apply")
	}
	// The child waits on stdin, then execs sleep: the exec's fresh pages are
	// charged to the new memory cgroup (v1 does not move old charges).
	cmd := exec.Command("/bin/busybox", "sh", "-c", "read x; exec /bin/busybox sleep 100")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	// Registered after the child's kill, so it runs first: thaw, kill, remove.
	t.Cleanup(func() {
		_ = mgr.Thaw()
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if err := mgr.Destroy(); err != nil {
			t.Errorf("cleanup Destroy: %v", err)
		}
	})
	pid := cmd.Process.Pid
	if err := mgr.Apply(pid); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ { // wait for the exec (no timing assertion)
		if c, _ := os.ReadFile(filepath.Join("/proc", itoa(int64(pid)), "cmdline")); strings.HasPrefix(string(c), "/bin/busybox\x00sleep") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	own, err := os.ReadFile(filepath.Join("/proc", itoa(int64(pid)), "cgroup"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ctrl := range []string{"memory", "cpu", "pids", "freezer", "devices", "cpuset"} {
		if !strings.Contains(string(own), ":"+ctrl+":"+name+"\n") {
			t.Errorf("child not in %s cgroup %s:\n%s", ctrl, name, own)
		}
	}
	if mode == Hybrid && !strings.Contains(string(own), "0::"+name+"\n") {
		t.Errorf("child not in the unified cgroup %s:\n%s", name, own)
	}

	res := &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(128 << 20), Reservation: i64(32 << 20), Kernel: i64(64 << 20)},
		CPU:    &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0", Mems: "0"},
		Pids:   &specs.LinuxPids{Limit: i64(20)},
		Devices: []specs.LinuxDeviceCgroup{
			{Allow: false, Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
			{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},
		},
	}
	if err := mgr.Set(res); err != nil {
		t.Fatalf("Set: %v", err)
	}
	checks := []struct{ ctrl, file, want string }{
		{"memory", "memory.limit_in_bytes", "67108864"},
		{"memory", "memory.memsw.limit_in_bytes", "134217728"},
		{"memory", "memory.soft_limit_in_bytes", "33554432"},
		{"cpu", "cpu.shares", "512"},
		{"cpu", "cpu.cfs_quota_us", "50000"},
		{"cpu", "cpu.cfs_period_us", "100000"},
		{"cpuset", "cpuset.cpus", "0"},
		{"pids", "pids.max", "20"},
	}
	for _, c := range checks {
		if got := readT(t, paths[c.ctrl], c.file); got != c.want {
			t.Errorf("%s = %q, want %q", c.file, got, c.want)
		}
	}
	list := readT(t, paths["devices"], "devices.list")
	if !v1DeviceAllowed(list, 'c', 1, 3, "rwm") {
		t.Errorf("/dev/null not allowed by devices.list:\n%s", list)
	}
	if v1DeviceAllowed(list, 'b', 8, 0, "r") {
		t.Errorf("/dev/sda allowed by devices.list:\n%s", list)
	}
	if !v1DeviceAllowed(list, 'c', 1, 5, "r") || v1DeviceAllowed(list, 'c', 1, 5, "w") {
		t.Errorf("/dev/zero should be read-only in devices.list:\n%s", list)
	}

	// Raising both limits needs memsw first; the manager orders the writes.
	if err := mgr.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(256 << 20), Swap: i64(512 << 20)}}); err != nil {
		t.Fatalf("Set (raise memory): %v", err)
	}
	if got := readT(t, paths["memory"], "memory.limit_in_bytes"); got != "268435456" {
		t.Errorf("raised memory.limit_in_bytes = %s", got)
	}
	// checkBeforeUpdate refuses a limit below usage.
	if err := mgr.Set(&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(4096), CheckBeforeUpdate: bptr(true)}}); err == nil {
		t.Errorf("Set with a limit below usage and checkBeforeUpdate succeeded")
	}
	// net_cls is not mounted on this host: like runc, the limit is skipped
	// with a warning and the other limits of the same call still apply.
	if paths["net_cls"] == "" {
		// 33 differs from the limit set before, so a Set that skipped
		// everything would show.
		err := mgr.Set(&specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: u32(0x100001)}, Pids: &specs.LinuxPids{Limit: i64(33)}})
		if err != nil {
			t.Errorf("Set network.classID without net_cls: %v, want it skipped", err)
		}
		if got := readT(t, paths["pids"], "pids.max"); got != "33" {
			t.Errorf("pids.max after a Set with a skipped net_cls limit = %s, want 33", got)
		}
		if err := mgr.Set(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(20)}}); err != nil {
			t.Fatal(err)
		}
	}

	if err := mgr.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if s, err := mgr.State(); err != nil || s != "frozen" {
		t.Errorf("State after Freeze = %q, %v", s, err)
	}
	if err := mgr.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if s, err := mgr.State(); err != nil || s != "thawed" {
		t.Errorf("State after Thaw = %q, %v", s, err)
	}

	pids, err := mgr.Pids()
	if err != nil {
		t.Fatalf("Pids: %v", err)
	}
	if !slices.Contains(pids, pid) {
		t.Errorf("Pids = %v, missing %d", pids, pid)
	}
	st, err := mgr.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if st.Pids.Current != 1 || st.Pids.Limit != 20 {
		t.Errorf("pids stats = %+v, want current 1 limit 20", st.Pids)
	}
	if st.Memory.Usage.Usage == 0 || st.Memory.Usage.Limit != 256<<20 {
		t.Errorf("memory stats = %+v", st.Memory.Usage)
	}
	if n, err := mgr.OOMKillCount(); err != nil || n != 0 {
		t.Errorf("OOMKillCount = %d, %v", n, err)
	}

	loaded, err := Load(paths)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if !loaded.Exists() {
		t.Errorf("loaded manager does not exist")
	}

	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
	if err := loaded.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	if loaded.Exists() {
		t.Errorf("Exists after Destroy")
	}
	for k, d := range paths {
		if exists(d) {
			t.Errorf("%s dir %s still exists", displayKey(k), d)
		}
	}
	if err := loaded.Destroy(); err != nil {
		t.Errorf("second Destroy: %v", err)
	}
}

// v2TestDir creates a cgroup under the cgroup2 mount without touching any
// existing cgroup's settings.
func v2TestDir(t *testing.T) string {
	t.Helper()
	requireRoot(t)
	mounts, err := readMountinfo()
	if err != nil {
		t.Skip(err)
	}
	var root string
	for _, m := range mounts {
		if m.fstype == "cgroup2" {
			root = m.mountpoint
			break
		}
	}
	if root == "" {
		t.Skip("no cgroup2 mount")
	}
	dir := filepath.Join(root, uniqueName(t))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = writeFile(dir, "cgroup.freeze", "0")
		if err := rmdirRetry(dir); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	return dir
}

// runIn runs a shell command inside the cgroup at dir (clone3 CLONE_INTO_CGROUP).
func runIn(t *testing.T, dir, script string) error {
	t.Helper()
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := exec.Command("/bin/busybox", "sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("%q: %v: %s", script, err, out)
	}
	return err
}

func TestDeviceProgramAttachRoot(t *testing.T) {
	dir := v2TestDir(t)
	mgr, err := Load(map[string]string{"": dir})
	if err != nil {
		t.Fatal(err)
	}
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"}, // null
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(5), Access: "r"},   // zero, read only
	}
	if err := mgr.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatalf("Set devices: %v", err)
	}
	if err := runIn(t, dir, "echo x > /dev/null && cat /dev/null"); err != nil {
		t.Errorf("/dev/null denied: %v", err)
	}
	if err := runIn(t, dir, "head -c1 /dev/zero >/dev/null"); err != nil {
		t.Errorf("reading /dev/zero denied: %v", err)
	}
	if err := runIn(t, dir, "echo x > /dev/zero"); err == nil {
		t.Errorf("writing /dev/zero allowed")
	}
	if err := runIn(t, dir, "cat /dev/full"); err == nil {
		t.Errorf("/dev/full allowed")
	}
	// An update replaces the program: now /dev/full is readable, and only one program stays attached.
	rules = append(rules, specs.LinuxDeviceCgroup{Allow: true, Type: "c", Major: i64(1), Minor: i64(7), Access: "r"})
	if err := mgr.Set(&specs.LinuxResources{Devices: rules}); err != nil {
		t.Fatalf("Set devices again: %v", err)
	}
	if err := runIn(t, dir, "head -c1 /dev/full >/dev/null"); err != nil {
		t.Errorf("/dev/full denied after update: %v", err)
	}
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	ids, err := attachedDevicePrograms(int(fd.Fd()))
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if len(ids) != 1 {
		t.Errorf("%d device programs attached after update, want 1", len(ids))
	}
}

func TestV2FreezeRoot(t *testing.T) {
	dir := v2TestDir(t)
	if !exists(filepath.Join(dir, "cgroup.freeze")) {
		t.Skip("kernel without cgroup.freeze")
	}
	fd, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer fd.Close()
	cmd := startSleeper(t, &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(fd.Fd())})
	t.Cleanup(func() { _ = writeFile(dir, "cgroup.freeze", "0") })
	mgr, err := Load(map[string]string{"": dir})
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.Freeze(); err != nil {
		t.Fatalf("Freeze: %v", err)
	}
	if s, _ := mgr.State(); s != "frozen" {
		t.Errorf("State = %q after Freeze", s)
	}
	stat, err := os.ReadFile(filepath.Join("/proc", itoa(int64(cmd.Process.Pid)), "wchan"))
	if err == nil {
		t.Logf("frozen child wchan: %s", stat)
	}
	if err := mgr.Thaw(); err != nil {
		t.Fatalf("Thaw: %v", err)
	}
	if s, _ := mgr.State(); s != "thawed" {
		t.Errorf("State = %q after Thaw", s)
	}
	pids, err := mgr.Pids()
	if err != nil || !slices.Contains(pids, cmd.Process.Pid) {
		t.Errorf("Pids = %v, %v; want %d", pids, err, cmd.Process.Pid)
	}
	_ = cmd.Process.Kill()
	_, _ = cmd.Process.Wait()
}

// TestHugetlbUnifiedRoot writes hugepage limits on the cgroup2 mount of a
// hybrid host. Enabling hugetlb needs "+hugetlb" in the hierarchy root's
// cgroup.subtree_control: the test runs only if that is already so, or if
// GANTRY_TEST_HUGETLB_ROOT=1 allows it to enable (and afterwards disable) it.
func TestHugetlbUnifiedRoot(t *testing.T) {
	requireRoot(t)
	mode, err := DetectMode()
	if err != nil || mode != Hybrid {
		t.Skip("needs a hybrid host")
	}
	sizes, err := hugepageSizes()
	if err != nil || len(sizes) == 0 {
		t.Skip("no huge page sizes")
	}
	name := "/" + uniqueName(t)
	mgr, err := New(name, "x")
	if err != nil {
		t.Fatal(err)
	}
	m := mgr.(*manager)
	if m.paths["hugetlb"] != "" {
		t.Skip("hugetlb is a v1 hierarchy here")
	}
	root, err := m.v2Root()
	if err != nil {
		t.Fatal(err)
	}
	sub := readT(t, root, "cgroup.subtree_control")
	if !contains(strings.Fields(sub), "hugetlb") {
		if os.Getenv("GANTRY_TEST_HUGETLB_ROOT") != "1" {
			t.Skip("hugetlb not enabled in the cgroup2 root; set GANTRY_TEST_HUGETLB_ROOT=1 to let the test enable it")
		}
		t.Cleanup(func() {
			if err := writeFile(root, "cgroup.subtree_control", "-hugetlb"); err != nil {
				t.Errorf("restore root subtree_control: %v", err)
			}
		})
	}
	cmd := startSleeper(t, nil)
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if err := mgr.Destroy(); err != nil {
			t.Errorf("cleanup Destroy: %v", err)
		}
	})
	if err := mgr.Apply(cmd.Process.Pid); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	res := &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: sizes[0], Limit: 4 << 30}}}
	if err := mgr.Set(res); err != nil {
		t.Fatalf("Set hugepageLimits: %v", err)
	}
	if got := readT(t, m.v2Dir(), "hugetlb."+sizes[0]+".max"); got != "4294967296" {
		t.Errorf("hugetlb.%s.max = %s", sizes[0], got)
	}
	st, err := mgr.Stats()
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	if _, ok := st.Hugetlb[sizes[0]]; !ok {
		t.Errorf("no hugetlb stats for %s: %+v", sizes[0], st.Hugetlb)
	}
}

// Destroy removes cgroups the container made below its own (nested
// first), not only the container's directories.
func TestDestroyNestedRoot(t *testing.T) {
	requireRoot(t)
	if _, err := DetectMode(); err != nil {
		t.Skipf("no cgroups: %v", err)
	}
	mgr, err := New("/"+uniqueName(t), "ignored")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = mgr.Destroy() })
	if err := mgr.Apply(0); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for _, d := range mgr.Paths() {
		if err := os.MkdirAll(filepath.Join(d, "child", "grandchild"), 0o755); err != nil {
			t.Fatalf("make nested cgroup: %v", err)
		}
	}
	if err := mgr.Destroy(); err != nil {
		t.Fatalf("Destroy: %v", err)
	}
	for k, d := range mgr.Paths() {
		if exists(d) {
			t.Errorf("%s dir %s still exists", displayKey(k), d)
		}
	}
}
