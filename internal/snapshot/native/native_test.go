package native

import (
	"testing"

	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/testsuite"
)

func TestNative(t *testing.T) {
	testsuite.Run(t, func(t *testing.T, root string) snapshot.Snapshotter {
		sn, err := New(root)
		if err != nil {
			t.Fatal(err)
		}
		return sn
	})
}
