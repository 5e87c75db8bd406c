package remote

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/remote/remotetest"
	"github.com/gantry-project/gantry/test/registry"
)

// TestPullHonestJoinsHostileFlight: an honest pull of a layer joins the
// download of the same digest that a pull from a hostile registry (bytes
// that do not match the digest) started. The honest pull must not inherit
// the hostile one's failure: it fetches the layer from its own registry.
func TestPullHonestJoinsHostileFlight(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	ld := img.Layers[0].Digest
	hold := make(chan struct{})
	evil := remotetest.New(t, r.URL())
	evil.Add(remotetest.Rule{Match: remotetest.Blob(ld.String()), Corrupt: true, Hold: hold})
	good := remotetest.New(t, r.URL())
	cs := newStore(t)
	ctx := context.Background()

	evilErr := make(chan error, 1)
	go func() {
		_, _, _, err := Pull(ctx, cs, evil.Ref("busybox:latest"), Options{MaxRetries: 1})
		evilErr <- err
	}()
	// The hostile pull's layer request is held: its flight is running.
	deadline := time.Now().Add(10 * time.Second)
	for evil.Gets(ld.String()) == 0 {
		if time.Now().After(deadline) {
			close(hold)
			t.Fatal("hostile pull never asked for the layer")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var once sync.Once
	joining := make(chan struct{})
	goodErr := make(chan error, 1)
	go func() {
		_, _, _, err := Pull(ctx, cs, good.Ref("busybox:latest"), Options{MaxRetries: 1,
			Lease: func(_ context.Context, d digest.Digest) error {
				if d == ld {
					once.Do(func() { close(joining) })
				}
				return nil
			}})
		goodErr <- err
	}()
	// The honest pull is about to fetch the layer: let it join the
	// hostile flight, then let the hostile registry answer.
	select {
	case <-joining:
	case err := <-goodErr:
		close(hold)
		t.Fatalf("honest pull ended before fetching the layer: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	close(hold)

	if err := <-evilErr; !errdefs.IsInvalidArgument(err) {
		t.Fatalf("hostile pull: %v, want ErrInvalidArgument", err)
	}
	if err := <-goodErr; err != nil {
		t.Fatalf("honest pull inherited the hostile pull's failure: %v", err)
	}
	if n := good.Gets(ld.String()); n != 1 {
		t.Fatalf("honest registry served the layer %d times, want 1", n)
	}
	if err := cs.Verify(ctx, ld); err != nil {
		t.Fatal(err)
	}
}

// TestPullPoisonedIngestRefetched: an ingest left by another source (a
// mirror that cut off, a hostile pull of the same digest) holds bytes that
// are not the blob's. Resuming it gives a digest mismatch; the pull then
// refetches the whole blob from 0, once, from the same endpoint, and
// succeeds with verified bytes.
func TestPullPoisonedIngestRefetched(t *testing.T) {
	r := registry.Start(t, registry.Options{})
	img := registry.PushBusybox(t, r, "busybox:latest")
	ld, size := img.Layers[0].Digest, img.Layers[0].Size
	for _, tc := range []struct {
		name   string
		prefix int64
		ranges []string
	}{
		// Resumed with Range, mismatch, refetched without.
		{"half", size / 2, []string{fmt.Sprintf("bytes=%d-", size/2), ""}},
		// A full ingest is checked without a request, then refetched.
		{"full", size, []string{""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			cs := newStore(t)
			w, err := cs.Writer(ctx, "fetch-"+ld.String(), ocispec.Descriptor{Digest: ld, Size: size})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(bytes.Repeat([]byte("E"), int(tc.prefix))); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			p := remotetest.New(t, r.URL())
			if _, _, _, err := Pull(ctx, cs, p.Ref("busybox:latest"), Options{MaxRetries: 1}); err != nil {
				t.Fatalf("pull over a poisoned ingest: %v", err)
			}
			if rg := p.Ranges(ld.String()); fmt.Sprint(rg) != fmt.Sprint(tc.ranges) {
				t.Fatalf("Range headers %q, want %q", rg, tc.ranges)
			}
			if err := cs.Verify(ctx, ld); err != nil {
				t.Fatal(err)
			}
			if ings, err := cs.Ingests(ctx); err != nil || len(ings) != 0 {
				t.Fatalf("ingests left: %+v, %v", ings, err)
			}
		})
	}
}
