package image

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/remote/remotetest"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/native"
	"github.com/gantry-project/gantry/internal/snapshot/overlay"
	"github.com/gantry-project/gantry/internal/unpack"
	"github.com/gantry-project/gantry/test/registry"
)

// eachSnapshotter runs fn with a Service on the native snapshotter (a
// sequential unpack) and on overlay (the parallel one).
func eachSnapshotter(t *testing.T, fn func(t *testing.T, s *Service)) {
	if os.Geteuid() != 0 {
		t.Skip("unpacking images keeps owners and device nodes: needs root")
	}
	for _, kind := range []string{"native", "overlay"} {
		t.Run(kind, func(t *testing.T) {
			root := t.TempDir()
			cs, err := content.NewStore(filepath.Join(root, "content"))
			if err != nil {
				t.Fatal(err)
			}
			db, err := metadata.Open(filepath.Join(root, "metadata.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { db.Close() })
			newSn := native.New
			if kind == "overlay" {
				newSn = overlay.New
			}
			sn, err := newSn(filepath.Join(root, "snapshots"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sn.Close() })
			fn(t, New(db, cs, sn))
		})
	}
}

// smallLayers makes n gzip layers of a few files each, their names starting
// with prefix.
func smallLayers(t *testing.T, prefix string, n int) []*registry.Layer {
	t.Helper()
	var out []*registry.Layer
	for i := range n {
		var files []registry.File
		for j := range 20 {
			files = append(files, registry.File{Name: fmt.Sprintf("%s%d/f%d", prefix, i, j), Data: []byte(strings.Repeat(fmt.Sprint(i), j+1))})
		}
		l, err := registry.NewLayer(files, registry.Gzip)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, l)
	}
	return out
}

func newTestImage(t *testing.T, layers ...*registry.Layer) *registry.Image {
	t.Helper()
	img, err := registry.NewImage(registry.Platform{}, false, []string{"/bin/sh"}, layers...)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// startPull runs s.Pull in the background; the channel gets its error.
func startPull(t *testing.T, s *Service, ref string, opts remote.Options) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		_, err := s.Pull(context.Background(), "default", ref, opts)
		done <- err
	}()
	return done
}

// waitCommitted waits until the snapshot key is committed. It fails the
// test if the pull ends first or after a generous deadline (a hang, not a
// slow machine).
func waitCommitted(t *testing.T, s *Service, key string, pulled <-chan error) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if info, err := s.Snapshotter.Stat(context.Background(), key); err == nil && info.Kind == snapshot.KindCommitted {
			return
		}
		select {
		case err := <-pulled:
			t.Fatalf("the pull ended (%v) before snapshot %s was committed", err, key)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("snapshot %s not committed after 2 minutes (snapshots %v)", key, snapshotKeys(t, s.Snapshotter))
		}
	}
}

// waitPull waits for the pull's result, failing the test after a generous
// deadline (a pull that does not stop).
func waitPull(t *testing.T, pulled <-chan error) error {
	t.Helper()
	select {
	case err := <-pulled:
		return err
	case <-time.After(2 * time.Minute):
		t.Fatal("the pull did not end within 2 minutes")
		return nil
	}
}

func chainOf(img *registry.Image) []string {
	var out []string
	for _, c := range unpack.ChainIDs(img.Config.RootFS.DiffIDs) {
		out = append(out, c.String())
	}
	return out
}

// retryLease returns the blobs and snapshots of the retry lease of name.
func retryLease(t *testing.T, s *Service, name string) ([]digest.Digest, []string) {
	t.Helper()
	leases, err := s.DB.ListLeases(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range leases {
		if l.ID == retryLeaseID("default", name) {
			return l.Blobs, l.Snapshots
		}
	}
	return nil, nil
}

// TestPullUnpacksWhileDownloading: the layers below the last one are
// unpacked (committed) while the last blob is still held by the registry;
// once it is released the pull completes.
func TestPullUnpacksWhileDownloading(t *testing.T) {
	eachSnapshotter(t, func(t *testing.T, s *Service) {
		r := registry.Start(t, registry.Options{})
		img := newTestImage(t, smallLayers(t, "stream", 4)...)
		registry.Push(t, r, "stream:1", img)
		p := remotetest.New(t, r.URL())
		last := img.Layers[3].Digest
		hold := make(chan struct{})
		p.Add(remotetest.Rule{Match: remotetest.Blob(last.String()), Hold: hold})
		ref := p.Ref("stream:1")
		chain := chainOf(img)

		pulled := startPull(t, s, ref, remote.Options{})
		// Layers 0-2 unpack while the last blob is held.
		waitCommitted(t, s, chain[0], pulled)
		waitCommitted(t, s, chain[2], pulled)
		if _, err := s.Content.Info(context.Background(), last); !errdefs.IsNotFound(err) {
			t.Fatalf("the held blob %s is in the store (%v) before it was released", last, err)
		}
		close(hold)
		if err := waitPull(t, pulled); err != nil {
			t.Fatal(err)
		}
		want := []string{}
		for _, c := range chain {
			want = append(want, c+"/committed")
		}
		slices.Sort(want)
		if got := snapshotKeys(t, s.Snapshotter); !slices.Equal(got, want) {
			t.Fatalf("snapshots after the pull: %v, want %v", got, want)
		}
		got, err := s.DB.GetImage(context.Background(), "default", ref)
		if err != nil || !slices.Equal(got.Snapshots, chain) {
			t.Fatalf("image %+v, %v; want snapshots %v", got, err, chain)
		}
		if leases, err := s.DB.ListLeases(context.Background()); err != nil || len(leases) != 0 {
			t.Fatalf("leases after the pull: %+v, %v", leases, err)
		}
	})
}

// TestPullLaterBlobFails: the last blob fails (404) after the layers below
// it are unpacked: the error names the image and the blob, the committed
// layers stay under the retry lease with their blobs, no extract-*
// snapshot is left, and a retry downloads none of them again.
func TestPullLaterBlobFails(t *testing.T) {
	eachSnapshotter(t, func(t *testing.T, s *Service) {
		r := registry.Start(t, registry.Options{})
		img := newTestImage(t, smallLayers(t, "later", 3)...)
		registry.Push(t, r, "later:1", img)
		p := remotetest.New(t, r.URL())
		last := img.Layers[2].Digest
		hold := make(chan struct{})
		p.Add(remotetest.Rule{Match: remotetest.Blob(last.String()), Hold: hold, Status: http.StatusNotFound,
			Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(`{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}`)})
		ref := p.Ref("later:1")
		chain := chainOf(img)

		pulled := startPull(t, s, ref, remote.Options{})
		waitCommitted(t, s, chain[1], pulled)
		close(hold)
		err := waitPull(t, pulled)
		t.Logf("error: %v", err)
		if !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "pull "+ref) || !strings.Contains(err.Error(), last.String()) {
			t.Fatalf("err = %v; want ErrNotFound naming %s and blob %s", err, ref, last)
		}
		want := []string{chain[0] + "/committed", chain[1] + "/committed"}
		slices.Sort(want)
		if got := snapshotKeys(t, s.Snapshotter); !slices.Equal(got, want) {
			t.Fatalf("snapshots after the failure: %v, want the two lower layers %v", got, want)
		}
		blobs, snaps := retryLease(t, s, ref)
		slices.Sort(snaps)
		if wantSnaps := []string{chain[0], chain[1]}; !slices.Equal(snaps, func() []string { slices.Sort(wantSnaps); return wantSnaps }()) {
			t.Errorf("retry lease snapshots %v, want %v", snaps, wantSnaps)
		}
		for _, d := range []digest.Digest{img.ConfigDigest(), img.Layers[0].Digest, img.Layers[1].Digest} {
			if !slices.Contains(blobs, d) {
				t.Errorf("retry lease blobs %v lack the verified blob %s", blobs, d)
			}
			if _, err := s.Content.Info(context.Background(), d); err != nil {
				t.Errorf("verified blob %s gone after the failure: %v", d, err)
			}
		}

		p.Clear()
		if _, err := s.Pull(context.Background(), "default", ref, remote.Options{}); err != nil {
			t.Fatal(err)
		}
		for _, l := range img.Layers[:2] {
			if n := p.Gets(l.Digest.String()); n != 1 {
				t.Errorf("layer %s downloaded %d times, want once", l.Digest, n)
			}
		}
	})
}

// TestPullDiffIDMismatchStopsDownloads: layer 0 does not match its diff_id
// while a later blob is still downloading (held by the registry): the
// download stops without the blob being released, the error is the
// unpack's (naming the image, layer 0 and its digest), no snapshot is left
// and the verified blobs go to the retry lease.
func TestPullDiffIDMismatchStopsDownloads(t *testing.T) {
	eachSnapshotter(t, func(t *testing.T, s *Service) {
		r := registry.Start(t, registry.Options{})
		layers := smallLayers(t, "mismatch", 3)
		bad := *layers[0]
		bad.DiffID = digest.FromString("not the diff_id of layer 0")
		img := newTestImage(t, &bad, layers[1], layers[2])
		registry.Push(t, r, "mismatch:1", img)
		p := remotetest.New(t, r.URL())
		held := layers[2].Digest
		hold := make(chan struct{}) // never released: the pull must stop on its own
		p.Add(remotetest.Rule{Match: remotetest.Blob(held.String()), Hold: hold})
		ref := p.Ref("mismatch:1")

		var progress []remote.Progress
		err := waitPull(t, startPull(t, s, ref, remote.Options{Progress: func(pr remote.Progress) { progress = append(progress, pr) }}))
		t.Logf("error: %v", err)
		if !errdefs.IsInvalidArgument(err) || errors.Is(err, context.Canceled) ||
			!strings.Contains(err.Error(), "pull "+ref) || !strings.Contains(err.Error(), "layer 0 ("+layers[0].Digest.String()+")") ||
			!strings.Contains(err.Error(), bad.DiffID.String()) {
			t.Fatalf("err = %v; want the unpack's ErrInvalidArgument naming %s, layer 0 (%s) and the diff_id %s", err, ref, layers[0].Digest, bad.DiffID)
		}
		if got := snapshotKeys(t, s.Snapshotter); len(got) != 0 {
			t.Fatalf("snapshots after the failure: %v, want none", got)
		}
		if _, err := s.Content.Info(context.Background(), held); !errdefs.IsNotFound(err) {
			t.Fatalf("the held blob is in the store: %v", err)
		}
		if p.Gets(held.String()) == 1 {
			// Its download was under way: it ended with the pull.
			if i := slices.IndexFunc(progress, func(pr remote.Progress) bool { return pr.Digest == held && pr.Err != nil }); i < 0 {
				t.Errorf("no failure reported for the held blob %s: %+v", held, progress)
			}
		}
		blobs, _ := retryLease(t, s, ref)
		for _, d := range []digest.Digest{img.ConfigDigest(), layers[0].Digest} {
			if !slices.Contains(blobs, d) {
				t.Errorf("retry lease blobs %v lack the verified blob %s", blobs, d)
			}
			if _, err := s.Content.Info(context.Background(), d); err != nil {
				t.Errorf("verified blob %s gone after the failure: %v", d, err)
			}
		}
	})
}
