package containers

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestStatsAllRunning: `stats` without a container shows every running
// container once, by name, as docker's `stats --no-stream` does (and
// `--no-stream` is accepted); a container that is not running is left out,
// and with none running only the header is printed. `stats NAME` shows
// that container alone.
func TestStatsAllRunning(t *testing.T) {
	e := newEnv(t)
	e.mustGantry("run", "-d", "--name", "s1", "busybox", "sleep", "1000")
	e.mustGantry("run", "-d", "--name", "s2", "busybox", "sleep", "1000")
	e.mustGantry("run", "--name", "gone", "busybox", "true")
	onePid := func(f []string) bool { return f[len(f)-1] == "1" }
	for _, args := range [][]string{{"stats"}, {"stats", "--no-stream"}} {
		out, errOut, code := e.gantry(args...)
		if code != 0 || errOut != "" || !statsRowOf(out, "s1", onePid) || !statsRowOf(out, "s2", onePid) ||
			strings.Contains(out, "gone") || strings.Count(strings.TrimSpace(out), "\n") != 2 {
			t.Errorf("%s: exit %d, stderr %q, stdout:\n%s\nwant a row for s1 and for s2 (one process each) and none for gone",
				strings.Join(args, " "), code, errOut, out)
		}
	}
	var all []json.RawMessage
	if err := json.Unmarshal([]byte(e.mustGantry("stats", "--format", "json")), &all); err != nil || len(all) != 2 {
		t.Errorf("stats --format json: %d entries (%v), want 2", len(all), err)
	}
	if out := e.mustGantry("stats", "s2"); !statsRowOf(out, "s2", onePid) || strings.Contains(out, "s1") {
		t.Errorf("stats s2:\n%s\nwant s2's row alone", out)
	}

	e.mustGantry("rm", "-f", "s1", "s2", "gone")
	out, errOut, code := e.gantry("stats")
	if code != 0 || errOut != "" || strings.Join(strings.Fields(out), " ") != "CONTAINER CPU TIME MEM USAGE / LIMIT PIDS" {
		t.Errorf("stats with no container running: exit %d, stderr %q, stdout %q; want the header alone", code, errOut, out)
	}
	e.assertClean()
}
