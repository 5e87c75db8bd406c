package container

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func sleepBriefly() { time.Sleep(10 * time.Millisecond) }

func TestFilterPs(t *testing.T) {
	psEf := "UID        PID  PPID  C STIME TTY          TIME CMD\n" +
		"root         1     0  0 10:00 ?        00:00:01 /sbin/init\n" +
		"root      4242     1  0 10:01 ?        00:00:00 sleep 1000\n" +
		"root      4243  4242  0 10:01 ?        00:00:00 sh -c echo 4242\n" +
		"root     14242     1  0 10:01 ?        00:00:00 other\n"
	tests := []struct {
		name    string
		out     string
		pids    []int
		want    []string // lines after the header
		wantErr error
	}{
		{"ps -ef", psEf, []int{4242, 4243}, []string{"sleep 1000", "sh -c echo 4242"}, nil},
		{"no match keeps header", psEf, []int{99}, nil, nil},
		{"pid only in cmd does not match", psEf, []int{0}, nil, nil},
		{"pid column first", "  PID COMMAND\n 4242 sleep\n   17 kworker\n", []int{4242}, []string{"4242 sleep"}, nil},
		{"pid column last", "COMMAND PID\nsleep 4242\nbash 17\n", []int{17}, []string{"bash 17"}, nil},
		{"no PID column", "COMMAND PPID\nsleep 1\n", []int{1}, nil, errdefs.ErrInvalidArgument},
		{"blank lines skipped", "PID\n\n4242\n\n", []int{4242}, []string{"4242"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FilterPs(tt.out, tt.pids)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			if lines[0] != strings.Split(tt.out, "\n")[0] {
				t.Errorf("header = %q", lines[0])
			}
			if len(lines)-1 != len(tt.want) {
				t.Fatalf("got %d lines %q, want %d", len(lines)-1, lines[1:], len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.HasSuffix(lines[i+1], w) {
					t.Errorf("line %d = %q, want it to end in %q", i+1, lines[i+1], w)
				}
			}
		})
	}
}

func TestRootPs(t *testing.T) {
	r := newRT(t)
	c := r.newContainer(true, nil, "sleep", "1000")

	var pids []int
	out := r.ok("ps", "--format", "json", c.id)
	if err := json.Unmarshal([]byte(out), &pids); err != nil {
		t.Fatalf("ps --format json: %q: %v", out, err)
	}
	if len(pids) != 1 || pids[0] != c.pid {
		t.Errorf("ps --format json = %v, want [%d] (the init)", pids, c.pid)
	}

	table := r.ok("ps", c.id)
	lines := strings.Split(strings.TrimSpace(table), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "PID") || !strings.Contains(lines[1], "sleep 1000") {
		t.Errorf("ps (table) = %q, want the header and the init's line", table)
	} else if f := strings.Fields(lines[1]); f[1] != strconv.Itoa(c.pid) {
		t.Errorf("ps (table) line %q: pid %s, want %d", lines[1], f[1], c.pid)
	}

	for _, args := range [][]string{{"ps", c.id, "-o", "pid,comm"}, {"ps", c.id, "--", "-o", "pid,comm"}} {
		out := r.ok(args...)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 2 || strings.Fields(lines[0])[0] != "PID" || strings.Join(strings.Fields(lines[1]), " ") != strconv.Itoa(c.pid)+" sleep" {
			t.Errorf("%v = %q, want \"PID COMMAND\" and \"%d sleep\"", args, out, c.pid)
		}
	}
	r.fails([]string{"ps", c.id, "-o", "comm"}, "PID")
	r.fails([]string{"ps", "--format", "yaml", c.id}, "--format")
	r.fails([]string{"ps", "gt-does-not-exist"}, "gt-does-not-exist")
}
