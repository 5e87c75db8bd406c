package task

import "testing"

func TestParseFault(t *testing.T) {
	for _, tc := range []struct {
		in    string
		point string
		count int
		ok    bool
	}{
		{"", "", 0, false},
		{"after-kill", "after-kill", 1, true},
		{"after-kill:3", "after-kill", 3, true},
		{" before-kill:1 ", "before-kill", 1, true},
		{"after-kill:0", "", 0, false},
		{"after-kill:x", "", 0, false},
		{":2", "", 0, false},
	} {
		p, c, ok := ParseFault(tc.in)
		if p != tc.point || c != tc.count || ok != tc.ok {
			t.Errorf("ParseFault(%q) = %q, %d, %v; want %q, %d, %v", tc.in, p, c, ok, tc.point, tc.count, tc.ok)
		}
	}
}

func TestFaultUnarmedIsNoop(t *testing.T) {
	t.Setenv(FaultEnv, "")
	for _, p := range FaultPoints {
		Fault(p) // must return: nothing is armed
	}
}
