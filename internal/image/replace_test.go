package image

import (
	"context"
	"testing"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/test/registry"
)

// TestReplacedImageCollected: a name moved to another image (here by a
// tag; a pull or an import of a newer image goes the same way) frees what
// only the old image referenced, as removing it would; the same image
// recorded again frees nothing.
func TestReplacedImageCollected(t *testing.T) {
	s := newService(t)
	ctx := context.Background()
	r := registry.Start(t, registry.Options{})
	registry.PushBusybox(t, r, "busybox:latest")
	registry.PushMultiArch(t, r, "multi:latest")
	old, err := s.Pull(ctx, "default", r.Ref("busybox:latest"), remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Inspect(ctx, "default", old.Name)
	if err != nil {
		t.Fatal(err)
	}
	multi, err := s.Pull(ctx, "default", r.Ref("multi:latest"), remote.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := countBlobs(t, s)
	if _, err := s.Pull(ctx, "default", r.Ref("busybox:latest"), remote.Options{}); err != nil {
		t.Fatal(err)
	}
	if n := countBlobs(t, s); n != before {
		t.Fatalf("pulling the same image again: %d blobs, want %d", n, before)
	}
	if _, err := s.Tag(ctx, "default", multi.Name, old.Name); err != nil {
		t.Fatal(err)
	}
	// busybox's manifest and config go; its layer is multi's amd64 layer.
	if n := countBlobs(t, s); n != before-2 {
		t.Errorf("after the name moved to another image: %d blobs, want %d", n, before-2)
	}
	for _, dg := range []string{old.Target.Digest.String(), d.Parsed.Config.Digest.String()} {
		for _, b := range mustBlobs(t, s) {
			if b == dg {
				t.Errorf("blob %s of the replaced image is still stored", dg)
			}
		}
	}
	if _, err := s.Content.Info(ctx, d.Parsed.Layers[0].Digest); err != nil {
		t.Errorf("shared layer removed: %v", err)
	}
}

func mustBlobs(t *testing.T, s *Service) []string {
	t.Helper()
	var out []string
	if err := s.Content.Walk(context.Background(), func(i content.Info) error {
		out = append(out, i.Digest.String())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}
