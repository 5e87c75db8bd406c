package sched

import (
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func TestValidateScheduler(t *testing.T) {
	tests := []struct {
		name string
		s    *specs.Scheduler
		want string // error prefix; "" for valid
	}{
		{"nil", nil, ""},
		{"other nice", &specs.Scheduler{Policy: specs.SchedOther, Nice: -5}, ""},
		{"batch flags", &specs.Scheduler{Policy: specs.SchedBatch, Nice: 19, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagResetOnFork}}, ""},
		{"fifo", &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 99}, ""},
		{"deadline", &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 1e6, Deadline: 2e6, Period: 3e6}, ""},
		{"deadline no period", &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 1e6, Deadline: 2e6}, ""},
		{"no policy", &specs.Scheduler{}, "process.scheduler.policy: is required"},
		{"bad policy", &specs.Scheduler{Policy: "SCHED_FAST"}, `process.scheduler.policy: unknown policy "SCHED_FAST"`},
		{"bad flag", &specs.Scheduler{Policy: specs.SchedOther, Flags: []specs.LinuxSchedulerFlag{specs.SchedFlagReclaim, "SCHED_FLAG_X"}}, `process.scheduler.flags[1]: unknown flag "SCHED_FLAG_X"`},
		{"nice high", &specs.Scheduler{Policy: specs.SchedOther, Nice: 20}, "process.scheduler.nice: 20 is outside -20..19"},
		{"nice low", &specs.Scheduler{Policy: specs.SchedOther, Nice: -21}, "process.scheduler.nice: -21 is outside -20..19"},
		{"rr zero priority", &specs.Scheduler{Policy: specs.SchedRR}, "process.scheduler.priority: 0 is outside 1..99 for SCHED_RR"},
		{"fifo 100", &specs.Scheduler{Policy: specs.SchedFIFO, Priority: 100}, "process.scheduler.priority: 100 is outside 1..99"},
		{"priority for other", &specs.Scheduler{Policy: specs.SchedOther, Priority: 5}, "process.scheduler.priority: only SCHED_FIFO and SCHED_RR"},
		{"deadline fields for idle", &specs.Scheduler{Policy: specs.SchedIdle, Period: 5}, "process.scheduler: runtime, deadline and period are only for SCHED_DEADLINE"},
		{"deadline no runtime", &specs.Scheduler{Policy: specs.SchedDeadline, Deadline: 5}, "process.scheduler.runtime: is required"},
		{"runtime over deadline", &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 6, Deadline: 5}, "process.scheduler.runtime: 6 exceeds deadline 5"},
		{"deadline over period", &specs.Scheduler{Policy: specs.SchedDeadline, Runtime: 1, Deadline: 5, Period: 4}, "process.scheduler.deadline: 5 exceeds period 4"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			check(t, ValidateScheduler(tc.s), tc.want)
		})
	}
}

func check(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("got %v, want nil", err)
		}
		return
	}
	if err == nil || !strings.HasPrefix(err.Error(), want) || !errors.Is(err, errdefs.ErrInvalidArgument) {
		t.Fatalf("got %v, want %q (invalid argument)", err, want)
	}
}

func TestValidateIOPriority(t *testing.T) {
	tests := []struct {
		p    *specs.LinuxIOPriority
		want string
	}{
		{nil, ""},
		{&specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_RT, Priority: 0}, ""},
		{&specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 7}, ""},
		{&specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_IDLE}, ""},
		{&specs.LinuxIOPriority{Class: "IOPRIO_CLASS_NONE"}, `process.ioPriority.class: unknown class "IOPRIO_CLASS_NONE"`},
		{&specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 8}, "process.ioPriority.priority: 8 is outside 0..7"},
		{&specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: -1}, "process.ioPriority.priority: -1 is outside 0..7"},
	}
	for _, tc := range tests {
		check(t, ValidateIOPriority(tc.p), tc.want)
	}
}

func TestParseCPUList(t *testing.T) {
	tests := []struct {
		in   string
		want []int
		err  bool
	}{
		{"0", []int{0}, false},
		{"0-3,5", []int{0, 1, 2, 3, 5}, false},
		{" 1 , 3-4 ", []int{1, 3, 4}, false},
		{"7,2-2", []int{2, 7}, false},
		{"1023", []int{1023}, false},
		{"", nil, true},
		{"1024", nil, true},
		{"3-1", nil, true},
		{"a", nil, true},
		{"-1", nil, true},
		{"1-", nil, true},
		{"1,,2", nil, true},
		{"+1", nil, true},
	}
	for _, tc := range tests {
		set, err := ParseCPUList(tc.in)
		if tc.err {
			if !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("ParseCPUList(%q) = %v, want invalid argument", tc.in, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCPUList(%q): %v", tc.in, err)
			continue
		}
		if set.Count() != len(tc.want) {
			t.Errorf("ParseCPUList(%q) has %d cpus, want %v", tc.in, set.Count(), tc.want)
		}
		for _, c := range tc.want {
			if !set.IsSet(c) {
				t.Errorf("ParseCPUList(%q) lacks cpu %d", tc.in, c)
			}
		}
	}
}

func TestSetInvalidArguments(t *testing.T) {
	check(t, SetPersonality(&specs.LinuxPersonality{Domain: "LINUX64"}), `linux.personality.domain: unknown domain "LINUX64"`)
	check(t, SetPersonality(&specs.LinuxPersonality{Domain: specs.PerLinux, Flags: []specs.LinuxPersonalityFlag{"X"}}), `linux.personality.flags: unknown flag "X"`)
	check(t, SetOOMScoreAdj(0, 1001), "process.oomScoreAdj: 1001 is outside -1000..1000")
	check(t, SetOOMScoreAdj(0, -1001), "process.oomScoreAdj: -1001 is outside -1000..1000")
}
