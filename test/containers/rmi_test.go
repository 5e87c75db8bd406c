package containers

import (
	"slices"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/test/clients"
)

// TestRmiImageInUse: rmi of the name a container was created from,
// running or stopped, is refused as docker refuses it: exit 1, one line
// naming the container, nothing removed. So is rmi of the last name of the
// image a container uses. A name no container was created from, of an
// image that keeps another name, goes. rmi -f removes the name anyway, and
// the containers still start: their snapshot chains are kept.
func TestRmiImageInUse(t *testing.T) {
	e := newEnv(t)
	images := func() []string { return strings.Fields(e.mustGantry("images", "-q")) }
	const (
		busybox = "docker.io/library/busybox:latest"
		spare   = "docker.io/library/spare:latest"
	)
	e.mustGantry("tag", "busybox", "spare")
	e.mustGantry("run", "-d", "--name", "user", "busybox", "sleep", "1000")
	if _, errOut, code := e.gantry("run", "--name", "stopped-user", "spare", "sh", "-c", "exit 3"); code != 3 {
		t.Fatalf("run stopped-user: exit %d, stderr %q; want 3", code, errOut)
	}
	ps := e.ps()
	refused := func(name, container string) {
		t.Helper()
		out, errOut, code := e.gantry("rmi", name)
		id := ps[container].ID[:12]
		if code != 1 || !oneLine(errOut) || !strings.Contains(errOut, id) || !strings.Contains(errOut, "must force") || endsWithKind(errOut) {
			t.Errorf("rmi %s while %s uses it: exit %d, stdout %q, stderr %q; want 1 and one line naming container %s",
				name, container, code, out, errOut, id)
		}
		t.Logf("rmi %s: exit %d: %s", name, code, strings.TrimSpace(errOut))
	}
	refused("busybox", "user")
	refused("spare", "stopped-user")
	if got := images(); !slices.Contains(got, busybox) || !slices.Contains(got, spare) || !slices.Contains(got, clients.ImageName) {
		t.Fatalf("images after the refused rmi: %v, want all three names kept", got)
	}

	// No container was created from this name, and the image keeps two.
	e.mustGantry("rmi", clients.ImageName)
	e.mustGantry("rmi", "-f", "busybox")
	if got := images(); !slices.Equal(got, []string{spare}) {
		t.Fatalf("images after rmi -f busybox: %v, want only %s", got, spare)
	}
	// spare is now the last name of the image "user" was created from.
	refused("spare", "user")
	e.mustGantry("rmi", "--force", "spare")
	if got := images(); len(got) != 0 {
		t.Fatalf("images after rmi -f spare: %v, want none", got)
	}

	// The containers run again without their image.
	e.mustGantry("stop", "-t", "1", "user")
	e.mustGantry("start", "user")
	e.waitFor("user running again", func() bool { return e.ps()["user"].State == "running" })
	e.mustGantry("start", "stopped-user")
	if out := strings.TrimSpace(e.mustGantry("wait", "stopped-user")); out != "3" {
		t.Errorf("stopped-user started again after rmi -f: wait says %q, want 3", out)
	}
	e.mustGantry("rm", "-f", "user", "stopped-user")
	// What the image's layers left is collected as after any rmi whose
	// image went while a container still used it.
	e.mustGantry("system", "prune")
	e.mustGantry("system", "check")
	e.assertClean()
}
