package main

import (
	"strings"
	"testing"
)

func TestParseTAP(t *testing.T) {
	tests := []struct {
		name        string
		in          string
		want        []check
		planProblem string
	}{
		{
			name: "pass fail skip",
			in: "TAP version 13\n" +
				"ok 1 - root.path is set\n" +
				"not ok 2 - hostname is set\n" +
				"ok 3 # SKIP not supported\n" +
				"1..3\n",
			want: []check{
				{1, "root.path is set", passed},
				{2, "hostname is set", failed},
				{3, "not supported", skipped},
			},
		},
		{
			name: "indented YAML holding nested TAP is ignored",
			in: "TAP version 13\n" +
				"ok 1 - outer\n" +
				"  ---\n" +
				"  stdout: |\n" +
				"    not ok 1 - inner\n" +
				"  not ok 2 - inner too\n" +
				"  ...\n" +
				"1..1\n",
			want: []check{{1, "outer", passed}},
		},
		{
			name: "TODO: failing is skipped, passing is passed",
			in:   "not ok 1 # TODO later\nok 2 # todo done early\n1..2\n",
			want: []check{{1, "later", skipped}, {2, "done early", passed}},
		},
		{
			name: "description keeps its own words after a directive-like hash",
			in:   "ok 1 - check #5 holds # SKIP no cgroup v2\n1..1\n",
			want: []check{{1, "check #5 holds", skipped}},
		},
		{
			name: "number and dash are optional",
			in:   "ok\nnot ok bare words\n1..2\n",
			want: []check{{0, "", passed}, {0, "bare words", failed}},
		},
		{
			name: "a second document with its own empty plan",
			in:   "TAP version 13\nok 1 - a\n1..1\nTAP version 13\n1..0\n",
			want: []check{{1, "a", passed}},
		},
		{
			name:        "missing plan",
			in:          "TAP version 13\nok 1 - a\nnot ok 2 - b\n",
			want:        []check{{1, "a", passed}, {2, "b", failed}},
			planProblem: "printed 2 checks without a TAP plan",
		},
		{
			name:        "short of plan",
			in:          "1..3\nok 1 - a\n",
			want:        []check{{1, "a", passed}},
			planProblem: "plan 1..3 but 1 checks reported",
		},
		{
			name:        "second document breaks its plan",
			in:          "TAP version 13\nok 1 - a\n1..1\nTAP version 13\n1..2\nok 1 - b\n",
			want:        []check{{1, "a", passed}, {1, "b", passed}},
			planProblem: "plan 1..2 but 1 checks reported",
		},
		{
			name: "no output at all is no plan problem",
			in:   "",
		},
		{
			name: "diagnostics and noise are not checks",
			in:   "# expect: 1024, actual: 1024\nokay\nnot okay\n1..0\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseTAP(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("parseTAP: %v", err)
			}
			if len(s.checks) != len(tt.want) {
				t.Fatalf("got %d checks %+v, want %d %+v", len(s.checks), s.checks, len(tt.want), tt.want)
			}
			for i := range tt.want {
				if s.checks[i] != tt.want[i] {
					t.Errorf("check %d: got %+v, want %+v", i, s.checks[i], tt.want[i])
				}
			}
			if got := s.planProblem(); got != tt.planProblem {
				t.Errorf("planProblem: got %q, want %q", got, tt.planProblem)
			}
		})
	}
}

func TestParseTAPBailOut(t *testing.T) {
	s, err := parseTAP(strings.NewReader("ok 1 - a\nBail out! no rootfs\n"))
	if err != nil {
		t.Fatalf("parseTAP: %v", err)
	}
	if !s.bailed || s.bailOut != "no rootfs" {
		t.Errorf("got bailed=%v reason=%q, want true %q", s.bailed, s.bailOut, "no rootfs")
	}
}
