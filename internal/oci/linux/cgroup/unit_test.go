package cgroup

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

const hybridMountinfo = `24 1 0:22 / /sys rw - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
`

const hybridSelf = `9:name=systemd:/user.slice
4:memory:/process_api/abc
2:cpuacct:/
1:cpu:/
0::/user.slice
`

func mustMounts(t *testing.T, s string) []mountInfo {
	t.Helper()
	m, err := parseMountinfo(strings.NewReader(s))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestModeFromMounts(t *testing.T) {
	tests := []struct {
		name, info string
		want       Mode
		wantErr    bool
	}{
		{"hybrid", hybridMountinfo, Hybrid, false},
		{"legacy", "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu,cpuacct\n", Legacy, false},
		{"unified", "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n", Unified, false},
		{"none", "24 1 0:22 / /sys rw - sysfs sysfs rw\n", 0, true},
		{"optional fields", "30 23 0:26 / /sys/fs/cgroup rw shared:4 master:1 - cgroup2 cgroup2 rw\n", Unified, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := modeFromMounts(mustMounts(t, tt.info))
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Fatalf("mode = %v, %v; want %v, err %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestResolvePaths(t *testing.T) {
	mounts := mustMounts(t, hybridMountinfo)
	self, err := parseProcCgroup(strings.NewReader(hybridSelf))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path, id string
		want           map[string]string
		kind           error
	}{
		{"empty uses id", "", "c1", map[string]string{
			"cpu": "/sys/fs/cgroup/cpu/c1", "cpuacct": "/sys/fs/cgroup/cpuacct/c1", "memory": "/sys/fs/cgroup/memory/c1",
			"name=systemd": "/sys/fs/cgroup/systemd/c1", "": "/sys/fs/cgroup/unified/c1"}, nil},
		{"absolute", "/a/b", "x", map[string]string{
			"cpu": "/sys/fs/cgroup/cpu/a/b", "cpuacct": "/sys/fs/cgroup/cpuacct/a/b", "memory": "/sys/fs/cgroup/memory/a/b",
			"name=systemd": "/sys/fs/cgroup/systemd/a/b", "": "/sys/fs/cgroup/unified/a/b"}, nil},
		{"relative to own cgroup", "ctr", "x", map[string]string{
			"cpu": "/sys/fs/cgroup/cpu/ctr", "cpuacct": "/sys/fs/cgroup/cpuacct/ctr", "memory": "/sys/fs/cgroup/memory/process_api/abc/ctr",
			"name=systemd": "/sys/fs/cgroup/systemd/user.slice/ctr", "": "/sys/fs/cgroup/unified/user.slice/ctr"}, nil},
		{"dotdot inside", "/a/../b", "x", map[string]string{
			"cpu": "/sys/fs/cgroup/cpu/b", "cpuacct": "/sys/fs/cgroup/cpuacct/b", "memory": "/sys/fs/cgroup/memory/b",
			"name=systemd": "/sys/fs/cgroup/systemd/b", "": "/sys/fs/cgroup/unified/b"}, nil},
		{"absolute escape", "/../etc", "x", nil, errdefs.ErrInvalidArgument},
		{"relative escape", "../../../x", "x", nil, errdefs.ErrInvalidArgument},
		{"root itself", "/a/..", "x", nil, errdefs.ErrInvalidArgument},
		{"systemd", "system.slice:gantry:abc", "x", nil, errdefs.ErrNotImplemented},
		{"bad id", "", "a/b", nil, errdefs.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := resolvePaths(mounts, self, tt.path, tt.id)
			if tt.kind != nil {
				if !errors.Is(err, tt.kind) {
					t.Fatalf("err = %v, want %v", err, tt.kind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("paths =\n%v\nwant\n%v", got, tt.want)
			}
		})
	}
}

func TestResolvePathsMountRoot(t *testing.T) {
	// Inside a container the mount root is the container's cgroup.
	mounts := mustMounts(t, "35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n")
	self := map[string]string{"memory": "/docker/abc/sub"}
	got, err := resolvePaths(mounts, self, "ctr", "x")
	if err != nil {
		t.Fatal(err)
	}
	if got["memory"] != "/sys/fs/cgroup/memory/sub/ctr" {
		t.Fatalf("got %v", got)
	}
	if _, err := resolvePaths(mounts, map[string]string{"memory": "/dockerx/sub"}, "ctr", "x"); !errors.Is(err, errdefs.ErrFailedPrecondition) {
		t.Fatalf("own cgroup outside mount root: %v", err)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name  string
		r     specs.LinuxResources
		field string // "" = valid
	}{
		{"empty", specs.LinuxResources{}, ""},
		{"memory ok", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(200)}}, ""},
		{"swap unlimited", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(-1)}}, ""},
		{"swap below limit", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(200), Swap: i64(100)}}, "linux.resources.memory.swap"},
		{"limit below -1", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-2)}}, "linux.resources.memory.limit"},
		{"swappiness", specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: u64(101)}}, "linux.resources.memory.swappiness"},
		{"shares", specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1)}}, "linux.resources.cpu.shares"},
		{"quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(10)}}, "linux.resources.cpu.quota"},
		{"period", specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(2000000)}}, "linux.resources.cpu.period"},
		{"burst over quota", specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(5000), Burst: u64(6000)}}, "linux.resources.cpu.burst"},
		{"rt runtime over period", specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: i64(2000), RealtimePeriod: u64(1000)}}, "linux.resources.cpu.realtimeRuntime"},
		{"cpus ok", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-3,5", Mems: "0"}}, ""},
		{"cpus bad", specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "3-1"}}, "linux.resources.cpu.cpus"},
		{"mems bad", specs.LinuxResources{CPU: &specs.LinuxCPU{Mems: "x"}}, "linux.resources.cpu.mems"},
		{"idle", specs.LinuxResources{CPU: &specs.LinuxCPU{Idle: i64(2)}}, "linux.resources.cpu.idle"},
		{"pids", specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-5)}}, "linux.resources.pids.limit"},
		{"blkio weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{Weight: u16(5)}}, "linux.resources.blockIO.weight"},
		{"blkio device weight", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{WeightDevice: []specs.LinuxWeightDevice{{Weight: u16(2000)}}}}, "linux.resources.blockIO.weightDevice[0].weight"},
		{"blkio throttle dev", specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: -1}}}}}, "linux.resources.blockIO.throttleReadBpsDevice[0]"},
		{"hugepage ok", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB"}, {Pagesize: "1GB"}, {Pagesize: "64KB"}}}, ""},
		{"hugepage bad", specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2M"}}}, "linux.resources.hugepageLimits[0].pageSize"},
		{"net prio", specs.LinuxResources{Network: &specs.LinuxNetwork{Priorities: []specs.LinuxInterfacePriority{{Name: "a b"}}}}, "linux.resources.network.priorities[0].name"},
		{"device type", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Type: "x"}}}, "linux.resources.devices[0]"},
		{"device access", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rwx"}}}, "linux.resources.devices[0]"},
		{"device repeat", specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Access: "rr"}}}, "linux.resources.devices[0]"},
		{"unified ok", specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}, ""},
		{"unified slash", specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, `linux.resources.unified["../memory.max"]`},
		{"unified dotdot", specs.LinuxResources{Unified: map[string]string{"..": "1"}}, `linux.resources.unified[".."]`},
		{"unified procs", specs.LinuxResources{Unified: map[string]string{"cgroup.procs": "1"}}, `linux.resources.unified["cgroup.procs"]`},
		{"unified conflict", specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100)}, Unified: map[string]string{"memory.max": "1"}}, `linux.resources.unified["memory.max"]: conflicts with linux.resources.memory.limit`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(&tt.r)
			if tt.field == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), tt.field) {
				t.Fatalf("err = %v, want one starting with %q and of kind invalid argument", err, tt.field)
			}
		})
	}
}

func files(ws []write) map[string]string {
	out := map[string]string{}
	for _, w := range ws {
		if prev, ok := out[w.file]; ok {
			out[w.file] = prev + "|" + w.value
		} else {
			out[w.file] = w.value
		}
	}
	return out
}

func TestConversions(t *testing.T) {
	if got := sharesToWeight(2); got != 1 {
		t.Errorf("sharesToWeight(2) = %d", got)
	}
	if got := sharesToWeight(1024); got != 39 {
		t.Errorf("sharesToWeight(1024) = %d, want 39", got)
	}
	if got := sharesToWeight(262144); got != 10000 {
		t.Errorf("sharesToWeight(max) = %d", got)
	}
	if got := blkioWeightToIOWeight(10); got != 1 {
		t.Errorf("blkioWeightToIOWeight(10) = %d", got)
	}
	if got := blkioWeightToIOWeight(500); got != 4950 {
		t.Errorf("blkioWeightToIOWeight(500) = %d, want 4950", got)
	}
	if got := blkioWeightToIOWeight(1000); got != 10000 {
		t.Errorf("blkioWeightToIOWeight(1000) = %d", got)
	}

	mem, err := memoryV2(&specs.LinuxMemory{Limit: i64(100), Swap: i64(300), Reservation: i64(-1), Kernel: i64(5)})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"memory.max": "100", "memory.swap.max": "200", "memory.low": "max"}; !reflect.DeepEqual(files(mem), want) {
		t.Errorf("memoryV2 = %v, want %v", files(mem), want)
	}
	if mem, _ := memoryV2(&specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1)}); !reflect.DeepEqual(files(mem), map[string]string{"memory.max": "max", "memory.swap.max": "max"}) {
		t.Errorf("unlimited memoryV2 = %v", files(mem))
	}
	if _, err := memoryV2(&specs.LinuxMemory{Swap: i64(300)}); !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Errorf("swap without limit: %v", err)
	}
	if _, err := memoryV2(&specs.LinuxMemory{Swappiness: u64(10)}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("swappiness on v2: %v", err)
	}

	cpu, err := cpuV2(&specs.LinuxCPU{Shares: u64(1024), Quota: i64(50000), Period: u64(100000), Burst: u64(1000), Idle: i64(1)})
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]string{"cpu.weight": "39", "cpu.max": "50000 100000", "cpu.max.burst": "1000", "cpu.idle": "1"}; !reflect.DeepEqual(files(cpu), want) {
		t.Errorf("cpuV2 = %v, want %v", files(cpu), want)
	}
	for _, tt := range []struct {
		c    specs.LinuxCPU
		want string
	}{
		{specs.LinuxCPU{Quota: i64(-1)}, "max"},
		{specs.LinuxCPU{Quota: i64(20000)}, "20000"},
		{specs.LinuxCPU{Period: u64(50000)}, "max 50000"},
		{specs.LinuxCPU{Quota: i64(-1), Period: u64(50000)}, "max 50000"},
	} {
		ws, _ := cpuV2(&tt.c)
		if got := files(ws)["cpu.max"]; got != tt.want {
			t.Errorf("cpu.max for %+v = %q, want %q", tt.c, got, tt.want)
		}
	}
	if _, err := cpuV2(&specs.LinuxCPU{RealtimeRuntime: i64(100)}); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("realtime on v2: %v", err)
	}

	dev := specs.LinuxBlockIODevice{Major: 8, Minor: 0}
	b := &specs.LinuxBlockIO{
		Weight:                  u16(500),
		WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: dev, Weight: u16(1000)}},
		ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 1024}},
		ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: dev, Rate: 0}},
	}
	if want := map[string]string{"io.weight": "default 4950|8:0 10000", "io.max": "8:0 rbps=1024|8:0 wiops=max"}; !reflect.DeepEqual(files(ioV2(b, false)), want) {
		t.Errorf("ioV2 = %v, want %v", files(ioV2(b, false)), want)
	}
	if want := map[string]string{"io.bfq.weight": "500|8:0 1000", "io.max": "8:0 rbps=1024|8:0 wiops=max"}; !reflect.DeepEqual(files(ioV2(b, true)), want) {
		t.Errorf("ioV2 bfq = %v, want %v", files(ioV2(b, true)), want)
	}
	if want := map[string]string{"blkio.weight": "500", "blkio.weight_device": "8:0 1000", "blkio.throttle.read_bps_device": "8:0 1024", "blkio.throttle.write_iops_device": "8:0 0"}; !reflect.DeepEqual(files(blkioV1(b)), want) {
		t.Errorf("blkioV1 = %v, want %v", files(blkioV1(b)), want)
	}

	h := []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 4096}}
	if want := map[string]string{"hugetlb.2MB.max": "4096", "hugetlb.2MB.rsvd.max": "4096"}; !reflect.DeepEqual(files(hugetlbWrites(h, true)), want) {
		t.Errorf("hugetlb v2 = %v", files(hugetlbWrites(h, true)))
	}
	if want := map[string]string{"hugetlb.2MB.limit_in_bytes": "4096", "hugetlb.2MB.rsvd.limit_in_bytes": "4096"}; !reflect.DeepEqual(files(hugetlbWrites(h, false)), want) {
		t.Errorf("hugetlb v1 = %v", files(hugetlbWrites(h, false)))
	}
	rd := rdmaWrites(map[string]specs.LinuxRdma{"mlx5_1": {HcaHandles: u32(3)}, "mlx5_0": {HcaHandles: u32(2), HcaObjects: u32(10)}})
	if len(rd) != 2 || rd[0].value != "mlx5_0 hca_handle=2 hca_object=10" || rd[1].value != "mlx5_1 hca_handle=3" {
		t.Errorf("rdma = %+v", rd)
	}
	if p := files(pidsWrites(&specs.LinuxPids{Limit: i64(-1)})); p["pids.max"] != "max" {
		t.Errorf("pids -1 = %v", p)
	}
}

func TestV1DeviceWrites(t *testing.T) {
	ws, err := v1DeviceWrites([]specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rwm"},
		{Allow: true, Type: "b", Major: i64(8), Access: "mr"},
		{Allow: false, Type: "c", Major: i64(1), Minor: i64(3), Access: "w"},
	})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, w := range ws {
		got = append(got, w.file+" "+w.value)
	}
	want := []string{"devices.deny a", "devices.deny a", "devices.allow c 1:3 rwm", "devices.allow b 8:* rm", "devices.deny c 1:3 w"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q\nwant %q", got, want)
	}
}

func TestHugepageName(t *testing.T) {
	for in, want := range map[string]string{"hugepages-2048kB": "2MB", "hugepages-1048576kB": "1GB", "hugepages-64kB": "64KB", "hugepages-32768kB": "32MB"} {
		if got, ok := hugepageName(in); !ok || got != want {
			t.Errorf("hugepageName(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	if _, ok := hugepageName("foo"); ok {
		t.Errorf("hugepageName(foo) ok")
	}
}

func TestParseStats(t *testing.T) {
	b := parseBlkioV1("8:0 Read 100\n8:0 Write 5\n8:0 Total 105\nTotal 105\n")
	if len(b) != 3 || b[0] != (BlkioEntry{Major: 8, Minor: 0, Op: "Read", Value: 100}) {
		t.Errorf("parseBlkioV1 = %+v", b)
	}
	by, ios := parseIOStat("259:0 rbytes=10 wbytes=20 rios=1 wios=2 dbytes=0 dios=0\n")
	if len(by) != 2 || by[1] != (BlkioEntry{Major: 259, Op: "Write", Value: 20}) || len(ios) != 2 || ios[0].Value != 1 {
		t.Errorf("parseIOStat = %+v %+v", by, ios)
	}
	if kv := parseKeyValues("populated 1\nfrozen 0\n"); kv["populated"] != 1 || kv["frozen"] != 0 || len(kv) != 2 {
		t.Errorf("parseKeyValues = %v", kv)
	}
}
