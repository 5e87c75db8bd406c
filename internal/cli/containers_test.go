package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/client"
)

// TestContainerCommand: ps and inspect's summary show the user's command,
// without the init of --init; inspect's spec keeps the real args.
func TestContainerCommand(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"init", []string{gantryv1.InitPath, "--", "sleep", "1000"}, "sleep 1000"},
		{"no init", []string{"sleep", "1000"}, "sleep 1000"},
		{"no process", nil, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			sp := specs.Spec{Version: specs.Version}
			if tt.args != nil {
				sp.Process = &specs.Process{Args: tt.args}
			}
			raw, err := json.Marshal(sp)
			if err != nil {
				t.Fatal(err)
			}
			ctr := &gantryv1.Container{Id: "abc", Spec: raw, Status: "running"}
			if got := containerCommand(ctr); got != tt.want {
				t.Errorf("containerCommand = %q, want %q", got, tt.want)
			}
			if got := toContainerJSON(ctr).Command; got != tt.want {
				t.Errorf("containerJSON.Command = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestParseTail: logs --tail as docker reads it, a negative number meaning
// all the lines.
func TestParseTail(t *testing.T) {
	for in, want := range map[string]int64{"all": -1, "-1": -1, "-20": -1, "0": 0, "3": 3} {
		if got, err := parseTail(in); err != nil || got != want {
			t.Errorf("parseTail(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	var u usageError
	if _, err := parseTail("lots"); !errors.As(err, &u) {
		t.Errorf("parseTail(lots): err %v, want a usage error", err)
	}
}

// TestErrorLine: the line printed for an error drops the kind words that
// only repeat it; the error keeps its kind.
func TestErrorLine(t *testing.T) {
	err := errors.Join(
		fmt.Errorf("shim Kill: %w: %w", fmt.Errorf("process has exited: %w", client.ErrNotFound), client.ErrNotFound),
		fmt.Errorf("container s1 is already running: %w", client.ErrFailedPrecondition),
		notRunning("k4"),
	)
	want := "shim Kill: process has exited: not found\ncontainer s1 is already running\ncontainer k4 is not running"
	if got := errorLine(err, ""); got != want {
		t.Errorf("errorLine = %q, want %q", got, want)
	}
	if !errors.Is(notRunning("k4"), client.ErrFailedPrecondition) {
		t.Error("notRunning is not of kind failed precondition")
	}
}

// TestContainerJSONState: ps --format json and inspect always show pid
// (0 once the container does not run, as docker's State.Pid) and
// oomKilled, as gantryd answers them.
func TestContainerJSONState(t *testing.T) {
	for _, tt := range []struct {
		name string
		ctr  *gantryv1.Container
		want map[string]any
	}{
		{"running", &gantryv1.Container{Id: "a", Status: "running", Pid: 42},
			map[string]any{"pid": 42.0, "oomKilled": false}},
		{"oom killed", &gantryv1.Container{Id: "b", Status: "stopped", ExitStatus: 137, OomKilled: true},
			map[string]any{"pid": 0.0, "oomKilled": true, "exitCode": 137.0}},
		{"created", &gantryv1.Container{Id: "c", Status: "created"},
			map[string]any{"pid": 0.0, "oomKilled": false}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(toContainerJSON(tt.ctr))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			if err := json.Unmarshal(data, &got); err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %v, want %v (in %s)", k, got[k], v, data)
				}
			}
		})
	}
}
