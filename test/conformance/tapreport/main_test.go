package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExecFailure(t *testing.T) {
	tests := []struct {
		name string
		tap  string
		exit int
		want string
	}{
		{"clean", "ok 1 - a\n1..1\n", 0, ""},
		{"silent success", "", 0, ""},
		{"exit status", "TAP version 13\n1..0\n", 1, "executable exited with status 1"},
		{"full TAP but non-zero exit", "ok 1 - a\n1..1\n", 1, "executable exited with status 1"},
		{"timeout", "ok 1 - a\n", 124, "executable timed out after 120s"},
		{"killed after timeout", "", 137, "executable timed out after 120s"},
		{"plan broken", "ok 1 - a\n1..2\n", 0, "plan 1..2 but 1 checks reported"},
		{"bail out", "Bail out! gone\n", 0, "Bail out! gone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := parseTAP(strings.NewReader(tt.tap))
			if err != nil {
				t.Fatalf("parseTAP: %v", err)
			}
			r := &execResult{name: "x", tap: s, exit: tt.exit, timeout: 120}
			if got := r.execFailure(); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLoadNotRun(t *testing.T) {
	dir := writeResults(t, map[string]string{"x.tap": "", "x.exit": "not-run\n", "y.tap": "", "y.exit": "oops\n"})
	r, err := load(dir, "x", 120)
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if r.counts[failed] != 1 || len(r.failures) != 1 || r.failures[0] != "x: executable not run: time budget of the run spent" {
		t.Errorf("got counts %v failures %q, want one not-run failure", r.counts, r.failures)
	}
	if _, err := load(dir, "y", 120); err == nil {
		t.Error("load with a garbage exit file: got no error")
	}
}

// writeResults lays out a results directory as scripts/conformance.sh does.
func writeResults(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestRun(t *testing.T) {
	results := map[string]string{
		"a.tap": "TAP version 13\nok 1 - one\nnot ok 2 - two\nok 3 # SKIP three\nnot ok 4 - two\n1..4\n" +
			"  ---\n  not ok 9 - nested\n  ...\n",
		"a.exit": "0\n",
		"b.tap":  "TAP version 13\n1..0\n",
		"b.exit": "1\n",
		"c.tap":  "ok 1 - fine now\n1..1\n",
		"c.exit": "0\n",
	}
	tests := []struct {
		name      string
		allow     string
		wantCode  int
		wantLast  string
		wantLines []string
	}{
		{
			name:     "empty allow-list fails on every failure",
			allow:    "# header\n",
			wantCode: 1,
			wantLast: "2 passed, 3 failed, 1 skipped",
			wantLines: []string{
				"FAIL: 2 failing checks are not on the allow-list:",
				"  a: two",
				"  b: executable exited with status 1",
			},
		},
		{
			name: "everything allowed, one fixed, one unseen",
			allow: "# header\n\n# r1\na: two\n# r2\nb: executable exited with status 1\n" +
				"# r3\nc: fine now\n# r4\nd: gone\n",
			wantCode: 0,
			wantLast: "2 passed, 3 failed, 1 skipped",
			wantLines: []string{
				"2 failing checks are on the allow-list",
				"fixed, remove from allow-list: c: fine now",
				"allow-listed but not reported by this run: d: gone",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeResults(t, results)
			allow := filepath.Join(dir, "known-failures.txt")
			if err := os.WriteFile(allow, []byte(tt.allow), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errOut bytes.Buffer
			code := run([]string{"-results", dir, "-allow", allow, "-timeout", "120", "a", "b", "c"}, &out, &errOut)
			if code != tt.wantCode {
				t.Errorf("exit code: got %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, out.String(), errOut.String())
			}
			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if last := lines[len(lines)-1]; last != tt.wantLast {
				t.Errorf("last line: got %q, want %q", last, tt.wantLast)
			}
			for _, want := range tt.wantLines {
				if !strings.Contains(out.String(), want+"\n") {
					t.Errorf("output lacks line %q:\n%s", want, out.String())
				}
			}
			failures, err := os.ReadFile(filepath.Join(dir, "failures.txt"))
			if err != nil {
				t.Fatal(err)
			}
			if want := "a: two\nb: executable exited with status 1\n"; string(failures) != want {
				t.Errorf("failures.txt: got %q, want %q", failures, want)
			}
		})
	}
}

func TestRunInputErrors(t *testing.T) {
	dir := writeResults(t, map[string]string{"a.tap": "ok 1\n1..1\n", "bad-allow": "no reason: here\n", "allow": "# header\n"})
	tests := []struct {
		name string
		args []string
	}{
		{"no executables", []string{"-results", dir, "-allow", filepath.Join(dir, "bad-allow")}},
		{"missing allow-list", []string{"-results", dir, "-allow", filepath.Join(dir, "none"), "a"}},
		{"allow-list entry without reason", []string{"-results", dir, "-allow", filepath.Join(dir, "bad-allow"), "a"}},
		{"missing exit file", []string{"-results", dir, "-allow", filepath.Join(dir, "allow"), "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tt.args, &out, &errOut); code != 2 {
				t.Errorf("exit code: got %d, want 2; stderr: %s", code, errOut.String())
			}
		})
	}
}
