package containers

import (
	"strings"
	"testing"
)

// TestRunDetachedRm: `gantry run -d --rm` prints the id and returns; the
// container runs, and gantryd removes it once it exits (docker's -d --rm).
func TestRunDetachedRm(t *testing.T) {
	e := newEnv(t)
	id := strings.TrimSpace(e.mustGantry("run", "-d", "--rm", "--name", "gone", "busybox", "sh", "-c", "sleep 3; exit 3"))
	if len(id) < 12 {
		t.Fatalf("run -d --rm printed %q, want the container's id", id)
	}
	if out := e.mustGantry("ps", "-q"); !strings.Contains(out, id[:12]) {
		t.Errorf("run -d --rm: the container is not running right after (ps -q: %q)", out)
	}
	e.waitFor("the container removed after it exited", func() bool {
		return strings.TrimSpace(e.mustGantry("ps", "-a", "-q")) == ""
	})
	e.assertClean()
}
