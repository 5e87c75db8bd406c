package containers

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestInitCommandShown: for a container run with --init, `gantry ps`
// (JSON and table) and inspect's summary show the user's command, as
// docker does, while inspect's spec keeps the real process.args with
// gantry-init in front.
func TestInitCommandShown(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--init", "--name", "ini", "busybox", "sleep", "1000")

	var list []struct {
		Name    string `json:"name"`
		Command string `json:"command"`
	}
	if err := json.Unmarshal([]byte(e.mustGantry("ps", "--format", "json")), &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, p := range list {
		if p.Name == "ini" {
			found = true
			if p.Command != "sleep 1000" {
				t.Errorf("ps --format json command = %q, want %q", p.Command, "sleep 1000")
			}
		}
	}
	if !found {
		t.Fatalf("ps --format json does not list the container: %+v", list)
	}

	table := e.mustGantry("ps")
	if !strings.Contains(table, `"sleep 1000"`) || strings.Contains(table, "gantry-init") {
		t.Errorf("ps table does not show the command as \"sleep 1000\":\n%s", table)
	}

	var insp []struct {
		Command string `json:"command"`
		Spec    struct {
			Process struct {
				Args []string `json:"args"`
			} `json:"process"`
		} `json:"spec"`
	}
	if err := json.Unmarshal([]byte(e.mustGantry("inspect", "ini")), &insp); err != nil {
		t.Fatal(err)
	}
	if len(insp) != 1 {
		t.Fatalf("inspect ini gave %d entries, want 1", len(insp))
	}
	if insp[0].Command != "sleep 1000" {
		t.Errorf("inspect command = %q, want %q", insp[0].Command, "sleep 1000")
	}
	if got := strings.Join(insp[0].Spec.Process.Args, " "); got != "/sbin/gantry-init -- sleep 1000" {
		t.Errorf("inspect spec.process.args = %q, want the real args /sbin/gantry-init -- sleep 1000", got)
	}
	e.mustGantry("rm", "-f", "ini")
	e.assertClean()
}
