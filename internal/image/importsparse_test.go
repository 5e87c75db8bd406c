package image

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/gantry-project/gantry/internal/archive/archivetest"
	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
)

// TestImportRefusesSparse: an archive entry that is a sparse file (either
// GNU format) is refused before a byte of it is stored: its few bytes
// would become a blob of the size it claims. Nothing stays in the store,
// not even an ingest.
func TestImportRefusesSparse(t *testing.T) {
	ctx := context.Background()
	for _, pax := range []bool{true, false} {
		s := newService(t)
		tarball := archivetest.SparseTar("blobs/sha256/"+strings.Repeat("ab", 32), []byte("A"), 1<<30, pax)
		_, err := s.Import(ctx, "default", bytes.NewReader(tarball), ImportOptions{Name: "sparse"})
		if !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "a sparse file") {
			t.Fatalf("pax %v: import: %v; want an invalid-argument error naming the sparse file", pax, err)
		}
		var blobs int
		if err := s.Content.Walk(ctx, func(content.Info) error { blobs++; return nil }); err != nil {
			t.Fatal(err)
		}
		ingests, err := s.Content.Ingests(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if blobs != 0 || len(ingests) != 0 {
			t.Errorf("pax %v: %d blobs and %d ingests left", pax, blobs, len(ingests))
		}
	}
}
