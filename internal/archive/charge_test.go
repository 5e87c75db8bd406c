package archive

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/archive/archivetest"
)

var errOverBudget = errors.New("over budget")

// budget is a Charge that records what it is told and refuses what takes
// the total past limit.
type budget struct {
	limit   int64
	charged []int64
	total   int64
}

func (b *budget) charge(n int64) error {
	if b.total+n > b.limit {
		return errOverBudget
	}
	b.total += n
	b.charged = append(b.charged, n)
	return nil
}

// TestApplyChargesFileData: every regular file is charged its size before
// it is created, a sparse one its logical size (written out in full, in
// either sparse format), and a refused charge ends the apply before the
// file exists.
func TestApplyChargesFileData(t *testing.T) {
	root := t.TempDir()
	b := &budget{limit: 1 << 30}
	opts := ApplyOptions{Charge: b.charge}
	apply(t, root, opts, file("a", "abc"), dir("d"), file("d/empty", ""), symlink("s", "a"), file("d/b", "12345"), hardlink("h", "a"))
	if got := b.charged; len(got) != 2 || got[0] != 3 || got[1] != 5 {
		t.Errorf("charged %v, want [3 5] (empty files, directories, symlinks and hardlinks write no data)", got)
	}

	const size = 5<<20 + 3
	for _, pax := range []bool{true, false} {
		b.charged = nil
		name := map[bool]string{true: "pax", false: "gnu"}[pax]
		tarball := archivetest.SparseTar(name, []byte("data"), size, pax)
		if _, err := Apply(context.Background(), root, bytes.NewReader(tarball), opts); err != nil {
			t.Fatalf("%s sparse file: %v", name, err)
		}
		if len(b.charged) != 1 || b.charged[0] != size {
			t.Errorf("%s sparse file: charged %v, want [%d]", name, b.charged, size)
		}
		got, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != size || string(got[:4]) != "data" || bytes.Count(got[4:], []byte{0}) != size-4 {
			t.Errorf("%s sparse file: %d bytes starting %q, want %d: \"data\" then zeros", name, len(got), got[:min(len(got), 4)], size)
		}
	}

	root = t.TempDir()
	b = &budget{limit: 100}
	tarball := buildTar(t, file("small", "s"), file("big", strings.Repeat("x", 200)), file("after", "a"))
	_, err := Apply(context.Background(), root, bytes.NewReader(tarball), ApplyOptions{Charge: b.charge})
	if !errors.Is(err, errOverBudget) || !strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "200 bytes") {
		t.Fatalf("got %v, want the charge's error naming \"big\" and its 200 bytes", err)
	}
	checkTree(t, root, "small:s")
}

// TestApplyChargesCopyUp: a hardlink to a file of a lower layer charges the
// size of the copy it makes, before making it.
func TestApplyChargesCopyUp(t *testing.T) {
	base := t.TempDir()
	lower, upper := filepath.Join(base, "lower"), filepath.Join(base, "upper")
	for _, d := range []string{lower, upper} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	apply(t, lower, ApplyOptions{}, file("shared", strings.Repeat("s", 1000)), file("d/other", "o"))

	b := &budget{limit: 1500}
	opts := ApplyOptions{Whiteouts: WhiteoutOverlay, Parents: []string{lower}, Charge: b.charge}
	apply(t, upper, opts, hardlink("link", "shared"), hardlink("link2", "shared"), hardlink("d/link", "d/other"))
	if got := b.charged; len(got) != 2 || got[0] != 1000 || got[1] != 1 {
		t.Errorf("charged %v, want [1000 1]: one copy a file", got)
	}

	upper2 := filepath.Join(base, "upper2")
	if err := os.Mkdir(upper2, 0o755); err != nil {
		t.Fatal(err)
	}
	b = &budget{limit: 999}
	opts.Charge = b.charge
	_, err := Apply(context.Background(), upper2, bytes.NewReader(buildTar(t, file("f", ""), hardlink("link", "shared"))), opts)
	if !errors.Is(err, errOverBudget) || !strings.Contains(err.Error(), `"link"`) || !strings.Contains(err.Error(), "1000 bytes") {
		t.Fatalf("got %v, want the charge's error naming \"link\" and 1000 bytes", err)
	}
	checkTree(t, upper2, "f:")
}
