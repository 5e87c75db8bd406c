package container

import (
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func i64(v int64) *int64   { return &v }
func u64(v uint64) *uint64 { return &v }
func u16(v uint16) *uint16 { return &v }
func boolp(v bool) *bool   { return &v }
func js(v any) string      { b, _ := json.Marshal(v); return string(b) }

func TestParseMemory(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"0", 0, true},
		{"1048576", 1 << 20, true},
		{"-1", -1, true},
		{"64m", 64 << 20, true},
		{"64M", 64 << 20, true},
		{"64mb", 64 << 20, true},
		{"64MiB", 64 << 20, true},
		{"512k", 512 << 10, true},
		{"2g", 2 << 30, true},
		{"1.5g", 3 << 29, true},
		{"1t", 1 << 40, true},
		{"10 m", 10 << 20, true},
		{"8b", 8, true},
		{"", 0, false},
		{"abc", 0, false},
		{"-2", 0, false},
		{"-1m", 0, false},
		{"64x", 0, false},
		{"m", 0, false},
		{"9223372036854775807", math.MaxInt64, true},
		{"9223372036854775808", 0, false},
		{"9000000p", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseMemory(tt.in)
		if tt.ok != (err == nil) {
			t.Errorf("ParseMemory(%q): err = %v, want ok %v", tt.in, err, tt.ok)
			continue
		}
		if !tt.ok && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ParseMemory(%q): err %v is not ErrInvalidArgument", tt.in, err)
		}
		if tt.ok && got != tt.want {
			t.Errorf("ParseMemory(%q) = %d, want %d", tt.in, got, tt.want)
		}
	}
}

func TestUpdateFlagsApply(t *testing.T) {
	tests := []struct {
		name    string
		base    *specs.LinuxResources // as read from --resources
		flags   UpdateFlags
		want    *specs.LinuxResources
		wantErr string
	}{
		{"none", &specs.LinuxResources{}, UpdateFlags{}, &specs.LinuxResources{}, ""},
		{"memory and pids", &specs.LinuxResources{}, UpdateFlags{Memory: "64m", MemorySwap: "-1", PidsLimit: "20"},
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(64 << 20), Swap: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(20)}}, ""},
		{"cpu", &specs.LinuxResources{}, UpdateFlags{CPUShares: "512", CPUQuota: "-1", CPUPeriod: "100000", CPURtPeriod: "1000000", CPURtRuntime: "950000", CpusetCpus: "0-1", CpusetMems: "0"},
			&specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(512), Quota: i64(-1), Period: u64(100000), RealtimePeriod: u64(1000000), RealtimeRuntime: i64(950000), Cpus: "0-1", Mems: "0"}}, ""},
		{"flags override resources", &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1), Reservation: i64(7)}, BlockIO: &specs.LinuxBlockIO{Weight: u16(100)}},
			UpdateFlags{Memory: "2k", BlkioWeight: "500"},
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(2048), Reservation: i64(7)}, BlockIO: &specs.LinuxBlockIO{Weight: u16(500)}}, ""},
		{"pids not a number", &specs.LinuxResources{}, UpdateFlags{PidsLimit: "abc"}, nil, `--pids-limit "abc"`},
		{"negative shares", &specs.LinuxResources{}, UpdateFlags{CPUShares: "-5"}, nil, `--cpu-share "-5"`},
		{"bad memory", &specs.LinuxResources{}, UpdateFlags{MemoryReservation: "lots"}, nil, `--memory-reservation "lots"`},
		{"blkio weight too big for uint16", &specs.LinuxResources{}, UpdateFlags{BlkioWeight: "70000"}, nil, `--blkio-weight "70000"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.flags.Apply(tt.base)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errdefs.ErrInvalidArgument) {
					t.Fatalf("err = %v, want an invalid-argument error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if js(tt.base) != js(tt.want) {
				t.Errorf("got %s, want %s", js(tt.base), js(tt.want))
			}
		})
	}
}

func TestMergeResources(t *testing.T) {
	base := &specs.LinuxResources{
		Memory:         &specs.LinuxMemory{Limit: i64(100), Swap: i64(200), Swappiness: u64(10)},
		CPU:            &specs.LinuxCPU{Shares: u64(1024), Cpus: "0"},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}, {Pagesize: "1GB", Limit: 2}},
		BlockIO: &specs.LinuxBlockIO{ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 10}}},
		Unified: map[string]string{"memory.high": "1000"},
	}
	baseJSON := js(base)
	delta := &specs.LinuxResources{
		Memory:         &specs.LinuxMemory{Limit: i64(150)},
		CPU:            &specs.LinuxCPU{Quota: i64(5000), Mems: "0"},
		Pids:           &specs.LinuxPids{Limit: i64(9)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "1GB", Limit: 5}, {Pagesize: "64KB", Limit: 6}},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(300), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 20},
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 30}}},
		Unified: map[string]string{"cpu.idle": "1"},
	}
	deltaJSON := js(delta)
	want := &specs.LinuxResources{
		Memory:         &specs.LinuxMemory{Limit: i64(150), Swap: i64(200), Swappiness: u64(10)},
		CPU:            &specs.LinuxCPU{Shares: u64(1024), Quota: i64(5000), Cpus: "0", Mems: "0"},
		Pids:           &specs.LinuxPids{Limit: i64(9)},
		HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1}, {Pagesize: "1GB", Limit: 5}, {Pagesize: "64KB", Limit: 6}},
		BlockIO: &specs.LinuxBlockIO{Weight: u16(300), ThrottleReadBpsDevice: []specs.LinuxThrottleDevice{
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 20},
			{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 30}}},
		Unified: map[string]string{"memory.high": "1000", "cpu.idle": "1"},
	}
	got := MergeResources(base, delta)
	if js(got) != js(want) {
		t.Errorf("merge:\n got %s\nwant %s", js(got), js(want))
	}
	if js(base) != baseJSON || js(delta) != deltaJSON {
		t.Error("MergeResources modified its arguments")
	}
	if got := MergeResources(nil, delta); js(got) != deltaJSON {
		t.Errorf("merge onto nil = %s, want delta %s", js(got), deltaJSON)
	}
	if got := MergeResources(base, nil); js(got) != baseJSON {
		t.Errorf("merge of nil = %s, want base %s", js(got), baseJSON)
	}
}

func TestPlanUpdate(t *testing.T) {
	devs := []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}
	tests := []struct {
		name        string
		base, delta *specs.LinuxResources
		wantMerged  *specs.LinuxResources
		wantApplied *specs.LinuxResources
		wantErr     error
	}{
		{
			name:        "memory limit only: swap from base is written with it, usage checked",
			base:        &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(300)}, Devices: devs},
			delta:       &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(200)}},
			wantMerged:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(200), Swap: i64(300)}, Devices: devs},
			wantApplied: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(200), Swap: i64(300), CheckBeforeUpdate: boolp(true)}},
		},
		{
			name:    "memory limit above saved swap",
			base:    &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(300)}},
			delta:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(400)}},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:        "zeros are unchanged, unlimited memory makes swap unlimited",
			base:        &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(100), Swap: i64(300)}, Pids: &specs.LinuxPids{Limit: i64(5)}},
			delta:       &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Reservation: i64(0)}, Pids: &specs.LinuxPids{Limit: i64(0)}, CPU: &specs.LinuxCPU{Shares: u64(0)}},
			wantMerged:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(5)}},
			wantApplied: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1), CheckBeforeUpdate: boolp(true)}},
		},
		{
			name:        "quota written with saved period; checkBeforeUpdate false kept for the write only",
			base:        &specs.LinuxResources{CPU: &specs.LinuxCPU{Period: u64(50000), Shares: u64(10)}},
			delta:       &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: i64(20000)}, Memory: &specs.LinuxMemory{Limit: i64(1 << 20), CheckBeforeUpdate: boolp(false)}},
			wantMerged:  &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20)}, CPU: &specs.LinuxCPU{Shares: u64(10), Quota: i64(20000), Period: u64(50000)}},
			wantApplied: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(1 << 20), CheckBeforeUpdate: boolp(false)}, CPU: &specs.LinuxCPU{Quota: i64(20000), Period: u64(50000)}},
		},
		{
			name:        "pids onto nothing",
			base:        nil,
			delta:       &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}},
			wantMerged:  &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}},
			wantApplied: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}},
		},
		{
			name:        "same device rules are ignored",
			base:        &specs.LinuxResources{Devices: devs},
			delta:       &specs.LinuxResources{Devices: devs, Pids: &specs.LinuxPids{Limit: i64(3)}},
			wantMerged:  &specs.LinuxResources{Devices: devs, Pids: &specs.LinuxPids{Limit: i64(3)}},
			wantApplied: &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(3)}},
		},
		{
			name:    "changed device rules are refused",
			base:    &specs.LinuxResources{Devices: devs},
			delta:   &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}},
			wantErr: errdefs.ErrNotImplemented,
		},
		{
			name:    "shares out of range",
			delta:   &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: u64(1)}},
			wantErr: errdefs.ErrInvalidArgument,
		},
		{
			name:    "pids below -1",
			delta:   &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-2)}},
			wantErr: errdefs.ErrInvalidArgument,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			baseJSON, deltaJSON := js(tt.base), js(tt.delta)
			merged, applied, err := PlanUpdate(tt.base, tt.delta)
			if js(tt.base) != baseJSON || js(tt.delta) != deltaJSON {
				t.Error("PlanUpdate modified its arguments")
			}
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if js(merged) != js(tt.wantMerged) {
				t.Errorf("merged:\n got %s\nwant %s", js(merged), js(tt.wantMerged))
			}
			if js(applied) != js(tt.wantApplied) {
				t.Errorf("applied:\n got %s\nwant %s", js(applied), js(tt.wantApplied))
			}
		})
	}
}

func TestRollbackOf(t *testing.T) {
	tests := []struct {
		name          string
		applied, base *specs.LinuxResources
		want          *specs.LinuxResources
	}{
		{"unset limits go back to unlimited",
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(5)}, Pids: &specs.LinuxPids{Limit: i64(3)}, CPU: &specs.LinuxCPU{Quota: i64(1000)}},
			nil,
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(-1), Swap: i64(-1)}, Pids: &specs.LinuxPids{Limit: i64(-1)}, CPU: &specs.LinuxCPU{Quota: i64(-1)}}},
		{"saved values come back",
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(5), Swap: i64(9)}, CPU: &specs.LinuxCPU{Cpus: "1", Shares: u64(2)}},
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(50), Swap: i64(90)}, CPU: &specs.LinuxCPU{Cpus: "0-1", Shares: u64(1024)}},
			&specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: i64(50), Swap: i64(90)}, CPU: &specs.LinuxCPU{Cpus: "0-1", Shares: u64(1024)}}},
		{"nothing to restore", &specs.LinuxResources{Unified: map[string]string{"a.b": "1"}}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rollbackOf(tt.applied, tt.base); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %s, want %s", js(got), js(tt.want))
			}
		})
	}
}

func TestReadResources(t *testing.T) {
	r, err := ReadResources(strings.NewReader(`{"memory":{"limit":1024},"pids":{"limit":7}}`), "-")
	if err != nil || *r.Memory.Limit != 1024 || *r.Pids.Limit != 7 {
		t.Errorf("ReadResources = %s, %v", js(r), err)
	}
	for _, in := range []string{`{"memroy":{}}`, `{"memory":{"limit":"1g"}}`, `not json`} {
		if _, err := ReadResources(strings.NewReader(in), "-"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("ReadResources(%s): err = %v, want ErrInvalidArgument", in, err)
		}
	}
}

func TestRootUpdate(t *testing.T) {
	v1(t, "memory", "pids", "cpu", "cpuset")
	r := newRT(t)
	c := r.newContainer(true, nil, "sleep", "1000")
	saved := func() *specs.LinuxResources {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(r.root, c.id, "state.json"))
		if err != nil {
			t.Fatal(err)
		}
		var st struct {
			Spec specs.Spec `json:"spec"`
		}
		if err := json.Unmarshal(b, &st); err != nil {
			t.Fatal(err)
		}
		if st.Spec.Linux == nil || st.Spec.Linux.Resources == nil {
			t.Fatal("state.json has no linux.resources")
		}
		return st.Spec.Linux.Resources
	}

	r.ok("update", "--memory", "64m", c.id)
	if got := c.cgroupFile(t, "memory", "memory.limit_in_bytes"); got != "67108864" {
		t.Errorf("memory.limit_in_bytes after update --memory 64m: %s", got)
	}
	r.ok("update", "--pids-limit", "20", c.id)
	if got := c.cgroupFile(t, "pids", "pids.max"); got != "20" {
		t.Errorf("pids.max after update --pids-limit 20: %s", got)
	}
	if s := saved(); s.Memory == nil || s.Memory.Limit == nil || *s.Memory.Limit != 64<<20 || s.Pids == nil || *s.Pids.Limit != 20 {
		t.Errorf("saved resources after two updates: %s, want memory 64m and pids 20", js(s))
	}

	// --resources from stdin, merged onto what was saved
	_, serr, code := r.runIn(`{"cpu":{"shares":512},"pids":{"limit":30}}`, "update", "--resources", "-", c.id)
	if code != 0 {
		t.Fatalf("update --resources -: exit %d: %s", code, serr)
	}
	if got := c.cgroupFile(t, "cpu", "cpu.shares"); got != "512" {
		t.Errorf("cpu.shares after --resources: %s", got)
	}
	if got := c.cgroupFile(t, "pids", "pids.max"); got != "30" {
		t.Errorf("pids.max after --resources: %s", got)
	}
	if s := saved(); *s.Memory.Limit != 64<<20 || *s.Pids.Limit != 30 || *s.CPU.Shares != 512 {
		t.Errorf("saved resources: %s", js(s))
	}
	// from a file, with a flag overriding it
	file := filepath.Join(t.TempDir(), "res.json")
	os.WriteFile(file, []byte(`{"memory":{"limit":33554432},"pids":{"limit":40}}`), 0o644)
	r.ok("update", "-r", file, "--pids-limit", "41", c.id)
	if got := c.cgroupFile(t, "memory", "memory.limit_in_bytes"); got != "33554432" {
		t.Errorf("memory.limit_in_bytes after -r file: %s", got)
	}
	if got := c.cgroupFile(t, "pids", "pids.max"); got != "41" {
		t.Errorf("pids.max after -r file --pids-limit 41: %s", got)
	}

	// bad input: an error line, the cgroup and the saved state unchanged
	before := map[string]string{
		"memory.limit_in_bytes": c.cgroupFile(t, "memory", "memory.limit_in_bytes"),
		"pids.max":              c.cgroupFile(t, "pids", "pids.max"),
		"cpu.shares":            c.cgroupFile(t, "cpu", "cpu.shares"),
	}
	savedBefore := js(saved())
	r.fails([]string{"update", "--pids-limit", "abc", c.id}, "--pids-limit", "abc")
	r.fails([]string{"update", "--cpu-share", "-5", c.id}, "--cpu-share")
	r.fails([]string{"update", "--cpu-share", "1", c.id}, "shares")
	r.fails([]string{"update", "--memory", "lots", c.id}, "--memory")
	r.fails([]string{"update", "--memory", "4k", "--pids-limit", "99", c.id}, c.id, "below current usage")
	r.fails([]string{"update", "--memory-swap", "1m", c.id}, c.id, "swap")
	r.fails([]string{"update", "-r", filepath.Join(t.TempDir(), "missing.json"), c.id}, "--resources")
	r.fails([]string{"update", "--memory", "64m", "gt-does-not-exist"}, "gt-does-not-exist", "not found")
	if _, serr, code := r.runIn(`{"memory":{"limit":"big"}}`, "update", "-r", "-", c.id); code == 0 || !strings.Contains(serr, "--resources") {
		t.Errorf("update -r - with a bad JSON value: exit %d, %q", code, serr)
	}
	// the kernel refuses the cpuset after the memory limit was written:
	// the memory limit is put back
	if runtime.NumCPU() < 1024 {
		r.fails([]string{"update", "--memory", "48m", "--cpuset-cpus", "1023", c.id}, c.id, "cpus")
	}
	after := map[string]string{
		"memory.limit_in_bytes": c.cgroupFile(t, "memory", "memory.limit_in_bytes"),
		"pids.max":              c.cgroupFile(t, "pids", "pids.max"),
		"cpu.shares":            c.cgroupFile(t, "cpu", "cpu.shares"),
	}
	if !reflect.DeepEqual(before, after) {
		t.Errorf("cgroup changed by refused updates: before %v, after %v", before, after)
	}
	if got := js(saved()); got != savedBefore {
		t.Errorf("saved resources changed by refused updates:\n before %s\n after %s", savedBefore, got)
	}

	r.ok("kill", c.id, "KILL")
	for i := 0; r.state(c.id).Status != "stopped"; i++ {
		if i == 3000 {
			t.Fatal("container did not stop after SIGKILL")
		}
		sleepBriefly()
	}
	r.fails([]string{"update", "--memory", "64m", c.id}, c.id, "stopped")
}
