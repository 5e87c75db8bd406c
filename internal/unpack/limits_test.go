package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/gantry-project/gantry/internal/archive/archivetest"
	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/testsuite"
)

// bomb stores in cs a layer holding one file of size zero bytes, compressed
// with gzip or zstd, streamed (never held uncompressed).
func bomb(t *testing.T, cs *content.Store, name string, size int64, compression string) layer {
	t.Helper()
	var blob bytes.Buffer
	var zw io.WriteCloser
	switch compression {
	case "gzip":
		zw = gzip.NewWriter(&blob)
	case "zstd":
		w, err := zstd.NewWriter(&blob)
		if err != nil {
			t.Fatal(err)
		}
		zw = w
	}
	diff := digest.Canonical.Digester()
	tw := tar.NewWriter(io.MultiWriter(zw, diff.Hash()))
	if err := tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: size, Uid: os.Getuid(), Gid: os.Getgid(), ModTime: time.Unix(1700000000, 0)}); err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for left := size; left > 0; left -= int64(len(zeros)) {
		if _, err := tw.Write(zeros[:min(left, int64(len(zeros)))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob.Bytes()), Size: int64(blob.Len())}
	ctx := context.Background()
	w, err := cs.Writer(ctx, desc.Digest.String(), desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return layer{desc: desc, diffID: diff.Digest()}
}

// dirSize is the bytes of regular files under dir.
func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	if err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestUnpackLimits(t *testing.T) {
	ctx := context.Background()
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// 256 MiB of zeros: about 256 KiB in gzip, far less in zstd.
	gz := bomb(t, cs, "zeros", 256<<20, "gzip")
	zs := bomb(t, cs, "zeros", 256<<20, "zstd")
	small1 := bomb(t, cs, "one", 3<<20, "gzip")
	small2 := bomb(t, cs, "two", 3<<20, "gzip")
	t.Logf("gzip bomb %d bytes, zstd bomb %d bytes", gz.desc.Size, zs.desc.Size)

	for _, tc := range []struct {
		name   string
		layers []layer
		lim    Limits
		failAt int // index of the layer that fails; -1: none
		msg    string
	}{
		{"gzip per layer", []layer{gz}, Limits{MaxLayerSize: 16 << 20}, 0, "limit of 16777216 bytes per layer"},
		{"zstd per layer", []layer{zs}, Limits{MaxLayerSize: 16 << 20}, 0, "limit of 16777216 bytes per layer"},
		{"gzip ratio", []layer{gz}, Limits{RatioFloor: 8 << 20, MaxRatio: 100}, 0, "decompression bomb"},
		{"zstd ratio (default ratio)", []layer{zs}, Limits{RatioFloor: 8 << 20}, 0, "more than 1000 times"},
		{"per image", []layer{small1, small2}, Limits{MaxImageSize: 5 << 20}, 1, "limit of 5242880 bytes per image"},
		{"within limits", []layer{small1, small2}, Limits{MaxLayerSize: 4 << 20, MaxImageSize: 7 << 20}, -1, ""},
		{"ratio disabled", []layer{zs}, Limits{RatioFloor: 8 << 20, MaxRatio: -1}, -1, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snRoot := t.TempDir()
			sn, err := snapshotters(t)["native"](snRoot)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { sn.Close() })
			m, c := image(tc.layers...)
			top, err := UnpackWithLimits(ctx, cs, sn, m, c, tc.lim)
			if tc.failAt < 0 {
				if err != nil || top != ChainIDs(c.RootFS.DiffIDs)[len(tc.layers)-1].String() {
					t.Fatalf("UnpackWithLimits = %q, %v", top, err)
				}
				return
			}
			t.Logf("error: %v", err)
			bad := tc.layers[tc.failAt].desc.Digest.String()
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), tc.msg) || !strings.Contains(err.Error(), bad) {
				t.Fatalf("err = %v; want ErrInvalidArgument naming %s and %q", err, bad, tc.msg)
			}
			// The layers below stay; nothing of the failed one does.
			if got := keys(t, sn); len(got) != tc.failAt {
				t.Fatalf("snapshots after the bomb: %v; want %d", got, tc.failAt)
			}
			var limit int64 = 16 << 20
			if tc.lim.MaxImageSize > 0 {
				limit = tc.lim.MaxImageSize
			}
			if n := dirSize(t, snRoot); n > limit+(1<<20) {
				t.Fatalf("%d bytes left under the snapshotter root", n)
			}
		})
	}
	if _, err := Unpack(ctx, cs, mustNative(t), ocispec.Manifest{Layers: []ocispec.Descriptor{gz.desc}}, ocispec.Image{RootFS: ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{gz.diffID}}}); err != nil {
		t.Fatalf("a 256 MiB layer within the default limits: %v", err)
	}
}

func mustNative(t *testing.T) snapshot.Snapshotter {
	t.Helper()
	sn, err := snapshotters(t)["native"](t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	return sn
}

func TestLimitsDefaults(t *testing.T) {
	got := Limits{MaxRatio: -1, RatioFloor: 5}.withDefaults()
	want := Limits{MaxLayerSize: DefaultMaxLayerSize, MaxImageSize: DefaultMaxImageSize, MaxRatio: -1, RatioFloor: 5}
	if got != want {
		t.Fatalf("withDefaults = %+v, want %+v", got, want)
	}
}

// TestUnpackLimitsWrites: what a layer writes counts against the limits
// even where its tar stream holds less: a sparse file's logical size, and
// the files copied up for hardlinks to lower layers. A layer that writes
// too much fails, naming the entry and the limit, and leaves no snapshot.
func TestUnpackLimitsWrites(t *testing.T) {
	ctx := context.Background()
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, pax := range []bool{true, false} {
		huge := store(t, cs, archivetest.SparseTar("big", []byte("A"), 64<<20, pax), "gzip")
		sparse := store(t, cs, archivetest.SparseTar("sparse", []byte("data"), 3<<20, pax), "gzip")
		for name, newSn := range snapshotters(t) {
			t.Run(fmt.Sprintf("%s/pax=%v", name, pax), func(t *testing.T) {
				snRoot := t.TempDir()
				sn, err := newSn(snRoot)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { sn.Close() })
				m, c := image(huge)
				_, err = UnpackWithLimits(ctx, cs, sn, m, c, Limits{MaxLayerSize: 16 << 20})
				t.Logf("error: %v", err)
				if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), huge.desc.Digest.String()) ||
					!strings.Contains(err.Error(), `"big"`) || !strings.Contains(err.Error(), "limit of 16777216 bytes per layer") {
					t.Fatalf("got %v, want ErrInvalidArgument naming the layer, the entry and the limit", err)
				}
				if got := keys(t, sn); len(got) != 0 {
					t.Errorf("snapshots left: %v", got)
				}
				if n := dirSize(t, snRoot); n > 1<<20 {
					t.Errorf("%d bytes left under the snapshotter root", n)
				}

				// Within the limits, it is written out in full.
				m, c = image(sparse)
				top, err := UnpackWithLimits(ctx, cs, sn, m, c, Limits{MaxLayerSize: 4 << 20})
				if err != nil {
					t.Fatal(err)
				}
				mounts, err := sn.View(ctx, "view", top)
				if err != nil {
					t.Fatal(err)
				}
				testsuite.Use(t, mounts, func(dir string) {
					b, err := os.ReadFile(filepath.Join(dir, "sparse"))
					if err != nil || len(b) != 3<<20 || string(b[:4]) != "data" || bytes.Count(b[4:], []byte{0}) != len(b)-4 {
						t.Errorf("sparse file: %d bytes, %v; want 3 MiB: \"data\" then zeros", len(b), err)
					}
				})
			})
		}
	}

	t.Run("copy-up", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("the overlay snapshotter needs root")
		}
		// Each layer above the base copies its 8 MiB file up.
		layers := []layer{bomb(t, cs, "big", 8<<20, "gzip")}
		for i := 1; i <= 4; i++ {
			layers = append(layers, store(t, cs, layerTar(t, ent{name: fmt.Sprintf("link%d", i), typ: tar.TypeLink, link: "big"}), "gzip"))
		}
		m, c := image(layers...)
		chain := ChainIDs(c.RootFS.DiffIDs)
		for _, sn := range map[string]snapshot.Snapshotter{"parallel": newOverlay(t), "sequential": sequentialOnly{newOverlay(t)}} {
			_, err := UnpackWithLimits(ctx, cs, sn, m, c, Limits{MaxImageSize: 20 << 20})
			t.Logf("error: %v", err)
			if !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "layer 2 ("+layers[2].desc.Digest.String()) ||
				!strings.Contains(err.Error(), `"link2"`) || !strings.Contains(err.Error(), "limit of 20971520 bytes per image") {
				t.Fatalf("got %v, want ErrInvalidArgument naming layer 2, its entry and the limit", err)
			}
			want := []string{chain[0].String() + "/committed", chain[1].String() + "/committed"}
			sort.Strings(want)
			if got := keys(t, sn); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Errorf("snapshots after the failure: %v, want %v", got, want)
			}
			if top, err := UnpackWithLimits(ctx, cs, sn, m, c, Limits{MaxImageSize: 40 << 20}); err != nil || top != chain[4].String() {
				t.Errorf("within the limits: %q, %v", top, err)
			}
		}
	})
}

// TestLimitChargeSaturates: sizes from tar headers may be as large as
// int64 goes; their sums must not wrap past the limits.
func TestLimitChargeSaturates(t *testing.T) {
	for _, lim := range []Limits{{}, {MaxLayerSize: -1}, {MaxLayerSize: -1, MaxImageSize: -1}} {
		lr := &limitReader{lim: lim.withDefaults(), compressed: 1 << 20, image: &usage{}}
		if err := lr.charge(1); err != nil {
			t.Fatal(err)
		}
		if err := lr.charge(math.MaxInt64); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%+v: charge of 1 then math.MaxInt64 bytes: %v, want ErrInvalidArgument", lim, err)
		}
	}
}
