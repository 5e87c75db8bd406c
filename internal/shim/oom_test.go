package shim

import (
	"os"
	"path/filepath"
	"testing"
)

// Mount tables of the three layouts, as /proc/self/mountinfo shows them
// (the hybrid one is this project's test machine's).
const (
	mountinfoHybrid = `24 30 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 24 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`
	mountinfoLegacy = `31 24 0:28 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
33 31 0:30 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,name=systemd
36 31 0:33 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,cpu,cpuacct
37 31 0:34 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
`
	mountinfoUnified = `25 30 0:23 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`
	// Inside a container whose cgroup mounts show its own cgroup as
	// their root (no cgroup namespace), at a path with a space.
	mountinfoNested = `40 31 0:32 /kubepods/pod1 /sys/fs/cgroup/mem\040ory rw,relatime - cgroup cgroup rw,memory
`
)

const selfCgroupHybrid = `9:name=systemd:/user.slice
4:memory:/process_api/5a3a
2:cpuacct:/
0::/user.slice/session-1.scope
`

func TestFindOOMCounter(t *testing.T) {
	for _, tt := range []struct {
		name, mountinfo, self, cgroupsPath string
		want                               string // the file, "" for none
		wantErr                            bool
	}{
		{"hybrid, absolute: v1 memory", mountinfoHybrid, selfCgroupHybrid, "/gantry/default-c1",
			"/sys/fs/cgroup/memory/gantry/default-c1/memory.oom_control", false},
		{"hybrid, relative: below the shim's own memory cgroup", mountinfoHybrid, selfCgroupHybrid, "gantry/c1",
			"/sys/fs/cgroup/memory/process_api/5a3a/gantry/c1/memory.oom_control", false},
		{"hybrid, empty: /<id>", mountinfoHybrid, selfCgroupHybrid, "",
			"/sys/fs/cgroup/memory/c1/memory.oom_control", false},
		{"legacy, absolute", mountinfoLegacy, "", "/gantry/../other/c1",
			"/sys/fs/cgroup/memory/other/c1/memory.oom_control", false},
		{"unified, absolute: memory.events", mountinfoUnified, "0::/system.slice/gantryd.service\n", "/gantry/default-c1",
			"/sys/fs/cgroup/gantry/default-c1/memory.events", false},
		{"unified, relative: below the shim's own cgroup", mountinfoUnified, "0::/system.slice/gantryd.service\n", "c1",
			"/sys/fs/cgroup/system.slice/gantryd.service/c1/memory.events", false},
		{"nested mount root, relative", mountinfoNested, "4:memory:/kubepods/pod1/ctr\n", "c1",
			"/sys/fs/cgroup/mem ory/ctr/c1/memory.oom_control", false},
		{"own cgroup outside the mount's root", mountinfoNested, "4:memory:/elsewhere\n", "c1", "", true},
		{"relative without a line of the hierarchy", mountinfoUnified, "4:memory:/x\n", "c1", "", true},
		{"systemd path: not known", mountinfoHybrid, selfCgroupHybrid, "system.slice:gantry:c1", "", false},
		{"no cgroup mounted", "", "", "/gantry/c1", "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, ok, err := findOOMCounter(tt.mountinfo, tt.self, tt.cgroupsPath, "c1")
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got := map[bool]string{true: c.file}[ok]; got != tt.want || (ok && c.key != "oom_kill") {
				t.Errorf("counter = %+v (ok %v), want file %q, key oom_kill", c, ok, tt.want)
			}
		})
	}
}

// TestOOMCounterRead: the oom_kill line of v1's memory.oom_control and of
// v2's memory.events; a file without it (a kernel before 4.13) and a
// cgroup that is gone read as 0; a malformed count is an error.
func TestOOMCounterRead(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, content string
		want          uint64
		wantErr       bool
	}{
		{"v1", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n", 2, false},
		{"v2", "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n", 1, false},
		{"v2 no kill", "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n", 0, false},
		{"old kernel", "oom_kill_disable 0\nunder_oom 0\n", 0, false},
		{"malformed", "oom_kill many\n", 0, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(dir, tt.name)
			if err := os.WriteFile(file, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			n, err := oomCounter{file: file, key: "oom_kill"}.read()
			if n != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("read = %d, %v; want %d, error %v", n, err, tt.want, tt.wantErr)
			}
		})
	}
	if n, err := (oomCounter{file: filepath.Join(dir, "gone", "memory.events"), key: "oom_kill"}).read(); n != 0 || err != nil {
		t.Errorf("read of a removed cgroup = %d, %v; want 0, nil", n, err)
	}
}
