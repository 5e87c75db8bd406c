package cli

import (
	"os"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

func TestHumanDuration(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{
		{300 * time.Millisecond, "Less than a second"},
		{time.Second, "1 second"},
		{42 * time.Second, "42 seconds"},
		{90 * time.Second, "About a minute"},
		{5 * time.Minute, "5 minutes"},
		{70 * time.Minute, "About an hour"},
		{5 * time.Hour, "5 hours"},
		{72 * time.Hour, "3 days"},
		{21 * 24 * time.Hour, "3 weeks"},
		{90 * 24 * time.Hour, "3 months"},
		{3 * 365 * 24 * time.Hour, "3 years"},
	} {
		if got := humanDuration(tt.d); got != tt.want {
			t.Errorf("humanDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

// TestUpSince: a running container's STATUS says how long its process
// has run (the test process stands in for it); a pid that cannot be read
// or started before the container was created gives a plain "Up".
func TestUpSince(t *testing.T) {
	start, ok := processStart(int32(os.Getpid()))
	if !ok {
		t.Fatal("processStart of the test process: cannot tell")
	}
	if d := time.Since(start); d < -2*time.Second || d > 10*time.Minute {
		t.Fatalf("processStart of the test process: %v, %v ago", start, d)
	}
	now := start.Add(5 * time.Minute)
	ctr := &gantryv1.Container{Pid: int32(os.Getpid()), Status: "running", CreatedAt: timestamppb.New(start.Add(-time.Second))}
	if got := upSince(ctr, now); got != "Up 5 minutes" && got != "Up 4 minutes" {
		t.Errorf("upSince = %q, want Up 5 minutes", got)
	}
	ctr.CreatedAt = timestamppb.New(start.Add(time.Hour))
	if got := upSince(ctr, now); got != "Up" {
		t.Errorf("upSince of a pid older than its container = %q, want Up", got)
	}
	if got := upSince(&gantryv1.Container{Pid: 1 << 30, Status: "running"}, now); got != "Up" {
		t.Errorf("upSince of a missing pid = %q, want Up", got)
	}
}
