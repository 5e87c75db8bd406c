package rlimit

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
)

const (
	busybox     = "/bin/busybox"
	scenarioEnv = "GANTRY_RLIMIT_TEST_LIMITS"
)

// TestMain doubles as the child of TestApplySelf: with scenarioEnv set, the
// test binary applies those rlimits to itself and execs busybox to print
// /proc/self/limits.
func TestMain(m *testing.M) {
	if v, ok := os.LookupEnv(scenarioEnv); ok {
		var rl []specs.POSIXRlimit
		if err := json.Unmarshal([]byte(v), &rl); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := Apply(0, rl); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		err := syscall.Exec(busybox, []string{"cat", "/proc/self/limits"}, []string{})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		want int
		err  bool
	}{
		{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE, false},
		{"RLIMIT_CORE", unix.RLIMIT_CORE, false},
		{"RLIMIT_RTTIME", unix.RLIMIT_RTTIME, false},
		{"RLIMIT_AS", unix.RLIMIT_AS, false},
		{"NOFILE", 0, true},
		{"rlimit_nofile", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		got, err := Parse(tc.name)
		if tc.err {
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), strconv.Quote(tc.name)) {
				t.Errorf("Parse(%q) error = %v, want invalid argument naming it", tc.name, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %d, %v; want %d", tc.name, got, err, tc.want)
		}
	}
}

func TestApplyInvalid(t *testing.T) {
	tests := []struct {
		rl   []specs.POSIXRlimit
		want string
	}{
		{[]specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}, `process.rlimits[0]: unknown rlimit type "RLIMIT_BOGUS"`},
		{[]specs.POSIXRlimit{{Type: "RLIMIT_CORE"}, {Type: "RLIMIT_NOFILE", Soft: 10, Hard: 5}}, `process.rlimits[1] RLIMIT_NOFILE: soft limit 10 exceeds hard limit 5`},
	}
	for _, tc := range tests {
		// pid -1 fails in the kernel: every entry must be checked before
		// any is applied.
		err := Apply(-1, tc.rl)
		if err == nil || !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("Apply(%v) = %v, want %q", tc.rl, err, tc.want)
		}
	}
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	if _, err := os.Stat(busybox); err != nil {
		t.Skipf("%s not available", busybox)
	}
}

// limits parses /proc/PID/limits into name -> [soft, hard].
func limits(t *testing.T, text string) map[string][2]string {
	t.Helper()
	out := map[string][2]string{}
	for _, l := range strings.Split(text, "\n")[1:] {
		if len(l) < 47 {
			continue
		}
		f := strings.Fields(l[26:])
		if len(f) >= 2 {
			out[strings.TrimSpace(l[:26])] = [2]string{f[0], f[1]}
		}
	}
	return out
}

func TestApplyOtherProcess(t *testing.T) {
	needRoot(t)
	cmd := exec.Command(busybox, "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	rl := []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: 512, Hard: 2048},
		{Type: "RLIMIT_CORE", Soft: 0, Hard: 4096},
		{Type: "RLIMIT_NPROC", Soft: 300, Hard: 400},
	}
	if err := Apply(cmd.Process.Pid, rl); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	got := limits(t, string(b))
	for name, want := range map[string][2]string{
		"Max open files":     {"512", "2048"},
		"Max core file size": {"0", "4096"},
		"Max processes":      {"300", "400"},
	} {
		if got[name] != want {
			t.Errorf("%s = %v, want %v\n%s", name, got[name], want, b)
		}
	}
}

func TestApplyErrorNamesType(t *testing.T) {
	needRoot(t)
	cmd := exec.Command(busybox, "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	// Raising the hard limit past the current one needs CAP_SYS_RESOURCE
	// (absent here) or fs.nr_open; either way the kernel refuses.
	err := Apply(cmd.Process.Pid, []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1 << 40, Hard: 1 << 40}})
	if err == nil || !strings.Contains(err.Error(), "process.rlimits[0]: set RLIMIT_NOFILE to soft") {
		t.Fatalf("Apply of an impossible NOFILE = %v", err)
	}
}

// The limit applied to the calling process must survive execve, including
// NOFILE, which Go's syscall.Exec would otherwise reset.
func TestApplySelf(t *testing.T) {
	needRoot(t)
	rl := []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 777, Hard: 1555}, {Type: "RLIMIT_STACK", Soft: 4 << 20, Hard: 8 << 20}}
	j, _ := json.Marshal(rl)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{scenarioEnv + "=" + string(j)}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %s", err, stderr.String())
	}
	got := limits(t, string(out))
	if want := [2]string{"777", "1555"}; got["Max open files"] != want {
		t.Errorf("Max open files = %v, want %v\n%s", got["Max open files"], want, out)
	}
	if want := [2]string{"4194304", "8388608"}; got["Max stack size"] != want {
		t.Errorf("Max stack size = %v, want %v", got["Max stack size"], want)
	}
}
