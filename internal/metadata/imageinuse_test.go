package metadata

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// TestDeleteUnusedImage: a name is kept, with an error of kind
// ErrFailedPrecondition naming the containers, while a container of its
// namespace was created from its target, through that name or while it is
// the target's last name (docker's rule); a record without ImageTarget
// (written before it existed) counts by its name alone; other namespaces'
// containers do not count, nor containers of an image the name no longer
// leads to; an unused name goes; a missing one is not found.
func TestDeleteUnusedImage(t *testing.T) {
	ctx := context.Background()
	db, _ := openDB(t)
	desc := func(s string) ocispec.Descriptor {
		return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString(s), Size: 1}
	}
	put := func(ns, name string, target ocispec.Descriptor) {
		t.Helper()
		if err := db.PutImage(ctx, ns, Image{Name: name, Target: target}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(ns, id, image string, target digest.Digest) {
		t.Helper()
		if err := db.PutContainer(ctx, ns, Container{ID: id, Image: image, ImageTarget: target}); err != nil {
			t.Fatal(err)
		}
	}
	a, b, old := desc("a"), desc("b"), desc("old")
	put("default", "a:1", a)
	put("default", "a:2", a)
	put("default", "b:1", b)
	put("default", "old:1", old)
	put("default", "old:2", old)
	put("other", "b:1", b)
	run("default", "c-from-a1-0123456789", "a:1", a.Digest)
	run("default", "c-from-b1", "b:1", b.Digest)
	run("default", "c-old-record", "old:1", "")
	run("other", "c-other", "other:1", b.Digest)

	inUse := func(name string, want ...string) {
		t.Helper()
		err := db.DeleteUnusedImage(ctx, "default", name)
		var e *ImageInUseError
		if !errors.As(err, &e) || !errdefs.IsFailedPrecondition(err) || !slices.Equal(e.Containers, want) {
			t.Fatalf("DeleteUnusedImage(%s) = %v, want in use by %v, kind failed precondition", name, err, want)
		}
		if _, err := db.GetImage(ctx, "default", name); err != nil {
			t.Fatalf("%s after the refused delete: %v", name, err)
		}
		for _, id := range want {
			if !strings.Contains(err.Error(), id[:min(12, len(id))]) {
				t.Errorf("error %q does not name container %s", err, id)
			}
		}
	}
	gone := func(name string) {
		t.Helper()
		if err := db.DeleteUnusedImage(ctx, "default", name); err != nil {
			t.Fatalf("DeleteUnusedImage(%s) = %v, want it removed", name, err)
		}
		if _, err := db.GetImage(ctx, "default", name); !errdefs.IsNotFound(err) {
			t.Fatalf("%s after its delete: %v, want not found", name, err)
		}
	}
	inUse("a:1", "c-from-a1-0123456789") // created from it
	gone("a:2")                          // a:1 still names the target
	inUse("b:1", "c-from-b1")            // c-other is of another namespace
	inUse("old:1", "c-old-record")
	gone("old:2") // the old record counts by name only

	// The last name of a container's image, though it was created from
	// another name (since removed with force).
	put("default", "a:3", a)
	if err := db.DeleteImage(ctx, "default", "a:1"); err != nil {
		t.Fatal(err)
	}
	inUse("a:3", "c-from-a1-0123456789")
	if err := db.DeleteContainer(ctx, "default", "c-from-a1-0123456789"); err != nil {
		t.Fatal(err)
	}
	gone("a:3")

	// A name moved to another image (a newer pull) is no longer the
	// image of the containers created from it before.
	put("default", "b:1", desc("newer b"))
	gone("b:1")

	if err := db.DeleteUnusedImage(ctx, "default", "nosuch:1"); !errdefs.IsNotFound(err) {
		t.Errorf("DeleteUnusedImage(nosuch:1) = %v, want not found", err)
	}
}

// TestImageInUseMessage: the refusal names the containers (at most three,
// then a count) by their short ids and the image by its short digest.
func TestImageInUseMessage(t *testing.T) {
	target := digest.FromString("x")
	short := target.Encoded()[:12]
	for _, tt := range []struct {
		ids  []string
		want string
	}{
		{[]string{"1a2b3c4d5e6f7a8b"}, "container 1a2b3c4d5e6f is using image " + short + " (must force)"},
		{[]string{"c1", "c2"}, "containers c1, c2 are using image " + short + " (must force)"},
		{[]string{"c1", "c2", "c3", "c4", "c5"}, "containers c1, c2, c3 and 2 more are using image " + short + " (must force)"},
	} {
		if got := (&ImageInUseError{Name: "x:1", Target: target, Containers: tt.ids}).Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}
