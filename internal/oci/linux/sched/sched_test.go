package sched

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

const (
	busybox        = "/bin/busybox"
	personalityEnv = "GANTRY_SCHED_TEST_PERSONALITY"
)

// TestMain doubles as the child of TestSetPersonality: with personalityEnv
// set, the test binary sets that personality and execs busybox to print
// /proc/self/personality.
func TestMain(m *testing.M) {
	if v, ok := os.LookupEnv(personalityEnv); ok {
		runtime.LockOSThread()
		var p specs.LinuxPersonality
		if err := json.Unmarshal([]byte(v), &p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if err := SetPersonality(&p); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(3)
		}
		err := syscall.Exec(busybox, []string{"cat", "/proc/self/personality"}, []string{})
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	os.Exit(m.Run())
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

// sleeper starts a busybox sleep that the test kills on cleanup.
func sleeper(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(busybox, "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

func TestSetScheduler(t *testing.T) {
	needRoot(t)
	tests := []struct {
		s         specs.Scheduler
		policy    uint32
		maySkipRT bool
	}{
		{specs.Scheduler{Policy: specs.SchedBatch, Nice: 5}, 3, false},
		{specs.Scheduler{Policy: specs.SchedOther, Nice: 7, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}}, 0, false},
		{specs.Scheduler{Policy: specs.SchedIdle}, 5, false},
		{specs.Scheduler{Policy: specs.SchedRR, Priority: 10}, 2, true},
		{specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 1e6, Deadline: 10e6, Period: 100e6}, 6, true},
	}
	for _, tc := range tests {
		t.Run(string(tc.s.Policy), func(t *testing.T) {
			pid := sleeper(t)
			err := SetScheduler(pid, &tc.s)
			if err != nil && tc.maySkipRT && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY)) {
				t.Skipf("real-time scheduling refused here (cgroup rt budget): %v", err)
			}
			if err != nil {
				t.Fatal(err)
			}
			attr, err := unix.SchedGetAttr(pid, 0)
			if err != nil {
				t.Fatal(err)
			}
			if attr.Policy != tc.policy {
				t.Errorf("policy = %d, want %d", attr.Policy, tc.policy)
			}
			if (tc.s.Policy == specs.SchedOther || tc.s.Policy == specs.SchedBatch) && attr.Nice != tc.s.Nice {
				t.Errorf("nice = %d, want %d", attr.Nice, tc.s.Nice)
			}
			if attr.Priority != uint32(tc.s.Priority) {
				t.Errorf("priority = %d, want %d", attr.Priority, tc.s.Priority)
			}
			if len(tc.s.Flags) > 0 && attr.Flags&unix.SCHED_FLAG_RESET_ON_FORK == 0 {
				t.Errorf("flags = %#x, want SCHED_FLAG_RESET_ON_FORK", attr.Flags)
			}
			if tc.s.Policy == specs.SchedDeadline && (attr.Runtime != tc.s.Runtime || attr.Deadline != tc.s.Deadline || attr.Period != tc.s.Period) {
				t.Errorf("deadline params = %d/%d/%d, want %d/%d/%d", attr.Runtime, attr.Deadline, attr.Period, tc.s.Runtime, tc.s.Deadline, tc.s.Period)
			}
		})
	}
}

func TestSetSchedulerInvalid(t *testing.T) {
	err := SetScheduler(0, &specs.Scheduler{Policy: "SCHED_NOPE"})
	if err == nil || !strings.HasPrefix(err.Error(), "process.scheduler.policy") {
		t.Fatalf("SetScheduler with a bad policy = %v", err)
	}
}

func ioprioGet(t *testing.T, pid int) (class, prio int) {
	t.Helper()
	r, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, uintptr(pid), 0)
	if errno != 0 {
		t.Fatalf("ioprio_get: %v", errno)
	}
	return int(r) >> ioprioClassShift, int(r) & (1<<ioprioClassShift - 1)
}

func TestSetIOPriority(t *testing.T) {
	needRoot(t)
	tests := []struct {
		p     specs.LinuxIOPriority
		class int
	}{
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}, 2},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 2}, 1},
		{specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}, 3},
	}
	for _, tc := range tests {
		t.Run(string(tc.p.Class), func(t *testing.T) {
			pid := sleeper(t)
			if err := SetIOPriority(pid, &tc.p); err != nil {
				t.Fatal(err)
			}
			class, prio := ioprioGet(t, pid)
			if class != tc.class || prio != tc.p.Priority {
				t.Fatalf("ioprio = class %d prio %d, want class %d prio %d", class, prio, tc.class, tc.p.Priority)
			}
		})
	}
}

func TestSetCPUAffinity(t *testing.T) {
	needRoot(t)
	pid := sleeper(t)
	var all unix.CPUSet
	if err := unix.SchedGetaffinity(0, &all); err != nil {
		t.Fatal(err)
	}
	last := -1
	for c := 0; c < 1024; c++ {
		if all.IsSet(c) {
			last = c
		}
	}
	if err := SetCPUAffinity(pid, strconv.Itoa(last)); err != nil {
		t.Fatal(err)
	}
	var got unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &got); err != nil {
		t.Fatal(err)
	}
	if got.Count() != 1 || !got.IsSet(last) {
		t.Fatalf("affinity after SetCPUAffinity(%d) has %d cpus, cpu %d set: %v", last, got.Count(), last, got.IsSet(last))
	}
	if err := SetCPUAffinity(pid, "1-0"); err == nil {
		t.Fatal("SetCPUAffinity with a reversed range succeeded")
	}
}

func TestSetPersonality(t *testing.T) {
	needRoot(t)
	tests := []struct {
		domain specs.LinuxPersonalityDomain
		want   string
	}{
		{specs.PerLinux32, "00000008"},
		{specs.PerLinux, "00000000"},
	}
	for _, tc := range tests {
		j, _ := json.Marshal(specs.LinuxPersonality{Domain: tc.domain})
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = []string{personalityEnv + "=" + string(j)}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v: %s", tc.domain, err, stderr.String())
		}
		if got := strings.TrimSpace(string(out)); got != tc.want {
			t.Errorf("personality after %s = %q, want %q", tc.domain, got, tc.want)
		}
	}
}

func TestSetOOMScoreAdj(t *testing.T) {
	needRoot(t)
	pid := sleeper(t)
	path := fmt.Sprintf("/proc/%d/oom_score_adj", pid)
	read := func() int {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	cur := read()
	if cur >= 1000 {
		t.Skip("oom_score_adj is already at its maximum; it can only be raised here")
	}
	want := min(cur+100, 1000)
	if err := SetOOMScoreAdj(pid, want); err != nil {
		t.Fatal(err)
	}
	if got := read(); got != want {
		t.Fatalf("oom_score_adj = %d, want %d", got, want)
	}
	if err := SetOOMScoreAdj(999999999, 10); err == nil || !strings.HasPrefix(err.Error(), "process.oomScoreAdj: ") {
		t.Fatalf("SetOOMScoreAdj on a missing pid = %v", err)
	}
}
