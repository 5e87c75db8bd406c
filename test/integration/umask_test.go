package integration

import (
	"strings"
	"testing"

	"github.com/gantry-project/gantry/test/bundle"
	"github.com/gantry-project/gantry/test/probe/report"
)

// TestRootDefaultUmask: without process.user.umask the container's
// process starts with umask 022 whatever the umask of the caller of
// create (runc's behaviour); an exec keeps its caller's, as runc's does.
func TestRootDefaultUmask(t *testing.T) {
	b := bundle.New(t)
	stdout, stderr, code := runCmd(t, viaShell("umask 077"), "run", "--bundle", b.Dir, b.ID)
	if code != 0 {
		t.Fatalf("run: exit %d, stderr %s", code, stderr)
	}
	r, err := report.Parse([]byte(stdout))
	if err != nil {
		t.Fatal(err)
	}
	if r.Umask != 0o022 {
		t.Errorf("create under umask 077: the process has umask %#o, want 022", r.Umask)
	}

	sb, _ := startSleeper(t)
	for _, path := range []string{"", "go"} {
		prelude := "umask 077"
		if path != "" {
			prelude += "; export GANTRY_OCI_EXEC=" + path
		}
		stdout, stderr, code := runCmd(t, viaShell(prelude), "exec", sb.ID, "/bin/sh", "-c", "umask")
		if code != 0 {
			t.Fatalf("exec (path %q): exit %d, stderr %s", path, code, stderr)
		}
		if got := strings.TrimSpace(stdout); got != "0077" {
			t.Errorf("exec (path %q) under umask 077: umask %s, want the caller's 0077", path, got)
		}
	}
}
