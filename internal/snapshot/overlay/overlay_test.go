package overlay

import (
	"os"
	"testing"

	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/testsuite"
)

func TestOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("overlay snapshotter needs root")
	}
	testsuite.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		sn, err := New(root)
		if err != nil {
			t.Skipf("overlay unusable here: %v", err)
		}
		return sn
	})
}
