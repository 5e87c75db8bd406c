package cli

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
)

// The samples are gantryd's answers to Stats for a container that wrote
// 20 MiB to its root filesystem (page cache, inactive) under --memory 64m
// --pids-limit 50. stats-cgroup-v1.json was recorded on a hybrid host
// (v1 controllers); stats-cgroup-v2.json has gantry-oci's v2 layout
// (memory.current, memory.max, v2's memory.stat keys, cpu.stat's usec
// turned into ns) with the same workload's numbers.
func TestParseStats(t *testing.T) {
	readSample := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	v2 := readSample("stats-cgroup-v2.json")
	// runc's own `events --stats` line: the same data inside the event.
	event, err := json.Marshal(map[string]any{"type": "stats", "id": "c1", "data": json.RawMessage(v2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		data []byte
		want statsRow
		// cells is the table line of container "c1".
		cells []string
	}{
		{"cgroup v1", readSample("stats-cgroup-v1.json"),
			statsRow{CPUNanos: 14197731, Memory: 21864448 - 20971520, Limit: 64 << 20, Pids: 1},
			[]string{"c1", "0.01s", "872KiB / 64MiB", "1"}},
		{"cgroup v2", v2,
			statsRow{CPUNanos: 14198000, Memory: 22372352 - 20971520, Limit: 64 << 20, Pids: 1},
			[]string{"c1", "0.01s", "1.336MiB / 64MiB", "1"}},
		{"runc event", event,
			statsRow{CPUNanos: 14198000, Memory: 22372352 - 20971520, Limit: 64 << 20, Pids: 1},
			[]string{"c1", "0.01s", "1.336MiB / 64MiB", "1"}},
		// No limit: v1 through runc (page-rounded LLONG_MAX), gantry-oci
		// and v2 ("max"); no memory.stat.
		{"v1 unlimited", []byte(`{"cpu":{"usage":{"total":2500000000}},"memory":{"usage":{"usage":1048576,"limit":9223372036854771712}},"pids":{"current":3}}`),
			statsRow{CPUNanos: 2500000000, Memory: 1 << 20, Pids: 3},
			[]string{"c1", "2.50s", "1MiB / -", "3"}},
		{"v2 unlimited", []byte(`{"memory":{"usage":{"usage":1048576,"limit":18446744073709551615}}}`),
			statsRow{Memory: 1 << 20},
			[]string{"c1", "0.00s", "1MiB / -", "0"}},
		// Cache larger than the usage (counted at another time): the usage.
		{"inactive above usage", []byte(`{"memory":{"usage":{"usage":4096,"limit":1048576},"raw":{"inactive_file":8192}}}`),
			statsRow{Memory: 4096, Limit: 1 << 20},
			[]string{"c1", "0.00s", "4KiB / 1MiB", "0"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseStats(tt.data)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("parseStats = %+v, want %+v", got, tt.want)
			}
			if cells := got.cells("c1"); !slices.Equal(cells, tt.cells) {
				t.Errorf("cells = %q, want %q", cells, tt.cells)
			}
		})
	}
	if _, err := parseStats([]byte("not json")); err == nil {
		t.Error("parseStats(not json): no error")
	}
}

func TestBinarySize(t *testing.T) {
	for n, want := range map[uint64]string{
		0: "0B", 1023: "1023B", 1024: "1KiB", 64 << 20: "64MiB", 1536 << 20: "1.5GiB", 1070000: "1.02MiB",
	} {
		if got := binarySize(n); got != want {
			t.Errorf("binarySize(%d) = %q, want %q", n, got, want)
		}
	}
}
