package reliability

import (
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/task"
)

// TestFaultPointsRunDetached kills gantryd at each fault point that
// `gantry run -d` passes (it creates and starts the task in one call, one
// runtime `run --detach`), restarts it, and checks that the container is
// gone or in a state gantry shows and finishes (a created one starts; a
// running one is reconnected, exec-able, stops), and that after gantry rm
// -f nothing is left. The same for a foreground `gantry run --rm`, whose
// output the shim holds for an attacher that never comes.
func TestFaultPointsRunDetached(t *testing.T) {
	cases := []faultCase{
		{task.FaultAfterContainerRecord, []string{"gone"}},
		{task.FaultAfterSnapshotPrepare, []string{"gone"}},
		{task.FaultAfterBundleWritten, []string{"gone"}},
		{task.FaultBeforeShimLaunch, []string{"created"}},
		{task.FaultAfterShimLaunch, []string{"running"}},
		{task.FaultAfterTaskStart, []string{"running"}},
	}
	e := newEnv(t)
	for _, fg := range []bool{false, true} {
		for _, tc := range cases {
			name := "d-" + tc.point
			if fg {
				name = "fg-" + tc.point
			}
			t.Run(name, func(t *testing.T) {
				parent := e.t
				e.t = t
				defer func() { e.t = parent }()
				e.stop()
				e.extraEnv = []string{task.FaultEnv + "=" + tc.point}
				e.start()
				e.extraEnv = nil
				args := []string{"run", "-d", "--name", name, "busybox", "sh", "-c", counter}
				if fg {
					args = []string{"run", "--rm", "--name", name, "busybox", "sh", "-c", counter}
				}
				_, _, code := e.gantry(args...)
				if code == 0 {
					t.Fatalf("gantry %s succeeded although gantryd was to die at %s", strings.Join(args, " "), tc.point)
				}
				got, exists := e.restartAfterFault(t, tc.point, name, tc.want)
				if exists {
					switch got {
					case "created":
						e.mustGantry("start", name)
						if st := e.ps()[name].State; st != "running" {
							t.Errorf("after start: %s, want running", st)
						}
					case "running":
						if out := e.mustGantry("exec", name, "echo", "from-exec"); out != "from-exec\n" {
							t.Errorf("exec after the restart: %q", out)
						}
						e.waitFor("the counter's output in the log", func() bool {
							return strings.Contains(e.mustGantry("logs", name), "line 1\n")
						})
					}
					if out, code := e.systemCheck(); code != 0 {
						t.Errorf("system check before rm: exit %d\n%s", code, out)
					}
					e.mustGantry("stop", "-t", "1", name)
					e.mustGantry("rm", "-f", name)
				}
				e.assertClean()
			})
		}
	}
}
