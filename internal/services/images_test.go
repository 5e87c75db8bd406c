package services_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
	"github.com/gantry-project/gantry/internal/services"
)

// floodImages reports many intermediate progress events per blob, from
// several goroutines, then each blob's final state.
type floodImages struct{ services.Images }

const floodBlobs, floodSteps = 3, 2000

func (floodImages) Pull(ctx context.Context, ns, ref string, _ *ocispec.Platform, progress func(services.PullEvent)) (services.Image, error) {
	done := make(chan struct{})
	for b := 0; b < floodBlobs; b++ {
		go func() {
			defer func() { done <- struct{}{} }()
			d := digest.FromString(fmt.Sprint(b))
			for i := int64(1); i < floodSteps; i++ {
				progress(services.PullEvent{Progress: &services.Progress{Ref: ref, Digest: d, Total: floodSteps, Offset: i}})
			}
			progress(services.PullEvent{Progress: &services.Progress{Ref: ref, Digest: d, Total: floodSteps, Offset: floodSteps, Done: true}})
		}()
	}
	for b := 0; b < floodBlobs; b++ {
		<-done
	}
	return services.Image{Name: ref}, nil
}

func TestPullNeverDropsFinalEvents(t *testing.T) {
	l := bufconn.Listen(1 << 20)
	s := grpc.NewServer(services.ServerOptions(nil)...)
	services.Register(s, services.Backends{Images: floodImages{}})
	go s.Serve(l)
	defer s.Stop()
	conn, err := grpc.NewClient("passthrough:///x", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return l.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := gantryv1.NewImageServiceClient(conn).Pull(context.Background(), &gantryv1.PullRequest{Ref: "flood"})
	if err != nil {
		t.Fatal(err)
	}
	last := map[string]*gantryv1.Progress{}
	var image *gantryv1.Image
	for n := 0; ; n++ {
		msg, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if n < 5 {
			time.Sleep(20 * time.Millisecond) // a slow reader at first, so that the buffer fills
		}
		if img := msg.GetImage(); img != nil {
			image = img
			continue
		}
		p := msg.GetProgress()
		if prev := last[p.GetDigest()]; prev != nil && p.GetOffset() < prev.GetOffset() {
			t.Fatalf("blob %s went back from %d to %d", p.GetDigest(), prev.GetOffset(), p.GetOffset())
		}
		last[p.GetDigest()] = p
	}
	if image.GetName() != "flood" {
		t.Errorf("final image = %v", image)
	}
	if len(last) != floodBlobs {
		t.Fatalf("progress for %d blobs, want %d", len(last), floodBlobs)
	}
	for d, p := range last {
		if p.GetStatus() != gantryv1.ProgressStatus_PROGRESS_STATUS_DONE || p.GetOffset() != floodSteps {
			t.Errorf("blob %s ended at %v, want done at %d", d, p, floodSteps)
		}
	}
}
