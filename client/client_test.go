package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/client"
	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/services"
	"github.com/gantry-project/gantry/internal/snapshot"
)

// fakeImages records the namespace of each call and serves canned answers.
type fakeImages struct {
	mu       sync.Mutex
	ns       []string
	imported []byte
}

func (f *fakeImages) saw(ns string) {
	f.mu.Lock()
	f.ns = append(f.ns, ns)
	f.mu.Unlock()
}

var busybox = services.Image{Name: "docker.io/library/busybox:latest", Target: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m"), Size: 1}, Size: 42}

func (f *fakeImages) Pull(ctx context.Context, ns, ref string, _ *ocispec.Platform, progress func(services.PullEvent)) (services.Image, error) {
	f.saw(ns)
	if ref == "missing" {
		return services.Image{}, fmt.Errorf("pull %s: manifest: %w", ref, errdefs.ErrNotFound)
	}
	progress(services.PullEvent{Stage: "resolving"})
	d := digest.FromString("layer")
	progress(services.PullEvent{Progress: &services.Progress{Ref: "layer", Digest: d, Total: 10, Offset: 5}})
	progress(services.PullEvent{Progress: &services.Progress{Ref: "layer", Digest: d, Total: 10, Offset: 10, Done: true}})
	return busybox, nil
}
func (f *fakeImages) List(_ context.Context, ns string) ([]services.Image, error) {
	f.saw(ns)
	if ns == "empty" {
		return nil, nil
	}
	return []services.Image{busybox}, nil
}
func (f *fakeImages) Get(_ context.Context, ns, name string) (services.ImageDetail, error) {
	f.saw(ns)
	if name == "older-daemon" {
		// A gantryd whose messages still carry their kind words: a status
		// passes the server's conversion as it is.
		return services.ImageDetail{}, status.Error(codes.NotFound, "no such image: older-daemon: not found: not found")
	}
	return services.ImageDetail{}, fmt.Errorf("image %q: %w", name, errdefs.ErrNotFound)
}
func (f *fakeImages) Delete(_ context.Context, ns, name string, _ bool) (int64, error) {
	f.saw(ns)
	return 1234, nil
}
func (f *fakeImages) Tag(_ context.Context, ns, src, dst string) (services.Image, error) {
	f.saw(ns)
	return services.Image{}, fmt.Errorf("tag %s: %w", dst, errdefs.ErrAlreadyExists)
}
func (f *fakeImages) Import(_ context.Context, ns string, r io.Reader, name string) ([]services.Image, error) {
	f.saw(ns)
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.imported = b
	f.mu.Unlock()
	return []services.Image{{Name: name}}, nil
}
func (f *fakeImages) Export(_ context.Context, ns string, names []string, format string, w io.Writer) error {
	f.saw(ns)
	_, err := w.Write(bytes.Repeat([]byte(strings.Join(names, ",")+format), 300000))
	return err
}

type fakeMaintenance struct{}

func (fakeMaintenance) DiskUsage(context.Context, string) (services.DiskUsage, error) {
	return services.DiskUsage{ContentBytes: 7}, nil
}
func (fakeMaintenance) Prune(context.Context, bool) (services.PruneReport, error) {
	return services.PruneReport{}, errors.New("disk on fire")
}
func (fakeMaintenance) Check(context.Context) (services.CheckReport, error) {
	return services.CheckReport{}, nil
}

type fakeSnapshotter struct{ snapshot.Snapshotter }

func (fakeSnapshotter) Mounts(_ context.Context, key string) ([]snapshot.Mount, error) {
	if key != "k" {
		return nil, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	return []snapshot.Mount{{Type: "bind", Source: "/x", Options: []string{"ro", "rbind"}}}, nil
}

func start(t *testing.T, opts ...client.Option) (*client.Client, *fakeImages, *content.Store) {
	t.Helper()
	cs, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	imgs := &fakeImages{}
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer(services.ServerOptions(nil)...)
	services.Register(s, services.Backends{Images: imgs, Maintenance: fakeMaintenance{}, Content: cs, Snapshotter: fakeSnapshotter{}})
	go s.Serve(l)
	t.Cleanup(s.Stop)
	opts = append(opts, client.WithDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	c, err := client.New("bufconn", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, imgs, cs
}

func TestNamespaces(t *testing.T) {
	ctx := context.Background()
	c, imgs, _ := start(t)
	if _, err := c.ListImages(ctx); err != nil {
		t.Fatal(err)
	}
	cns, imgs2, _ := start(t, client.WithNamespace("tenant-a"))
	got, err := cns.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].GetName() != busybox.Name || got[0].GetSize() != 42 {
		t.Errorf("ListImages = %v", got)
	}
	if imgs.ns[0] != "default" || imgs2.ns[0] != "tenant-a" {
		t.Errorf("namespaces seen: %v and %v, want default and tenant-a", imgs.ns, imgs2.ns)
	}

	bad, _, _ := start(t, client.WithNamespace("Bad/NS"))
	_, err = bad.ListImages(ctx)
	if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), "Bad/NS") {
		t.Errorf("bad namespace: err = %v, want invalid argument naming it", err)
	}
}

func TestErrorKinds(t *testing.T) {
	ctx := context.Background()
	c, _, _ := start(t)
	_, err := c.GetImage(ctx, "nope")
	if !errors.Is(err, client.ErrNotFound) || !errors.Is(err, errdefs.ErrNotFound) || err.Error() != `image "nope": not found` {
		t.Errorf("GetImage: err = %v, want the daemon's not-found message", err)
	}
	_, err = c.GetImage(ctx, "older-daemon")
	if !errors.Is(err, client.ErrNotFound) || err.Error() != "no such image: older-daemon" {
		t.Errorf("GetImage(older-daemon): err = %v, want the message without its kind words, of kind not found", err)
	}
	if _, err := c.TagImage(ctx, "a", "b"); !errors.Is(err, client.ErrAlreadyExists) {
		t.Errorf("TagImage: err = %v, want already exists", err)
	}
	if _, err := c.Prune(ctx, false); err == nil || err.Error() != "disk on fire" || errors.Is(err, client.ErrNotFound) {
		t.Errorf("Prune: err = %v, want the plain message without a kind", err)
	}
	if _, err := c.SnapshotMounts(ctx, ""); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("SnapshotMounts(\"\"): err = %v, want invalid argument", err)
	}
	if _, err := c.ContentInfo(ctx, "sha256:zz"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("ContentInfo(bad digest): err = %v, want invalid argument", err)
	}
	if _, err := c.ContentInfo(ctx, digest.FromString("absent").String()); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("ContentInfo(absent): err = %v, want not found", err)
	}
	if client.IsUnreachable(err) {
		t.Error("an answer of the daemon must not look like an unreachable daemon")
	}
}

func TestPullStreamsProgressThenImage(t *testing.T) {
	ctx := context.Background()
	c, _, _ := start(t)
	var events []*gantryv1.PullResponse
	img, err := c.Pull(ctx, "busybox", client.PullOptions{Progress: func(r *gantryv1.PullResponse) { events = append(events, r) }})
	if err != nil {
		t.Fatal(err)
	}
	if img.GetName() != busybox.Name {
		t.Errorf("image = %v", img)
	}
	if len(events) != 3 || events[0].GetStage() != "resolving" {
		t.Fatalf("events = %v, want a stage and two progress events", events)
	}
	last := events[2].GetProgress()
	if last.GetStatus() != gantryv1.ProgressStatus_PROGRESS_STATUS_DONE || last.GetOffset() != 10 || last.GetTotal() != 10 {
		t.Errorf("last progress = %v, want done 10/10", last)
	}
	if events[1].GetProgress().GetStatus() != gantryv1.ProgressStatus_PROGRESS_STATUS_DOWNLOADING {
		t.Errorf("middle progress = %v, want downloading", events[1])
	}
	if _, err := c.Pull(ctx, "missing", client.PullOptions{}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Pull(missing): err = %v, want not found", err)
	}
}

func TestImportExportChunks(t *testing.T) {
	ctx := context.Background()
	c, imgs, _ := start(t)
	data := bytes.Repeat([]byte("0123456789"), 300000) // 3 MB: several chunks
	got, err := c.ImportImages(ctx, bytes.NewReader(data), "imported:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].GetName() != "imported:1" || !bytes.Equal(imgs.imported, data) {
		t.Errorf("import: images %v, %d bytes arrived, want %d", got, len(imgs.imported), len(data))
	}
	var buf bytes.Buffer
	if err := c.ExportImages(ctx, []string{"a", "b"}, "docker", &buf); err != nil {
		t.Fatal(err)
	}
	if want := bytes.Repeat([]byte("a,bdocker"), 300000); !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("export: %d bytes, want %d", buf.Len(), len(want))
	}
	if err := c.ExportImages(ctx, []string{"a"}, "zip", io.Discard); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("export format zip: err = %v, want invalid argument", err)
	}
}

func TestContentRead(t *testing.T) {
	ctx := context.Background()
	c, _, cs := start(t)
	blob := bytes.Repeat([]byte("blob"), 600000) // 2.4 MB
	desc := ocispec.Descriptor{Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	w, err := cs.Writer(ctx, "test", desc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.ReadContent(ctx, desc.Digest.String(), &buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), blob) {
		t.Errorf("read %d bytes, want the %d of the blob", buf.Len(), len(blob))
	}
	list, err := c.ListContent(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].GetDigest() != desc.Digest.String() || list[0].GetSize() != desc.Size {
		t.Errorf("ListContent = %v", list)
	}
	m, err := c.SnapshotMounts(ctx, "k")
	if err != nil || len(m) != 1 || m[0].GetType() != "bind" || strings.Join(m[0].GetOptions(), ",") != "ro,rbind" {
		t.Errorf("SnapshotMounts = %v, %v", m, err)
	}
}

func TestUnreachable(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "none.sock")
	c, err := client.New("unix://" + sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = c.ListImages(ctx)
	var u *client.UnreachableError
	if !errors.As(err, &u) || !errors.Is(err, client.ErrUnavailable) || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v (%T), want an *UnreachableError of kind unavailable wrapping ENOENT", err, err)
	}
	if u.Address != "unix://"+sock || !strings.Contains(err.Error(), sock) {
		t.Errorf("error %q should name the address", err)
	}
}
