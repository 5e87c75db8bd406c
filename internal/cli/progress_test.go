package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

func progressMsg(ref string, total, offset int64, st gantryv1.ProgressStatus) *gantryv1.PullResponse {
	return &gantryv1.PullResponse{Event: &gantryv1.PullResponse_Progress{Progress: &gantryv1.Progress{
		Ref: ref, Digest: "sha256:" + strings.Repeat(ref[:1], 64), Total: total, Offset: offset, Status: st,
	}}}
}

const (
	waiting     = gantryv1.ProgressStatus_PROGRESS_STATUS_WAITING
	downloading = gantryv1.ProgressStatus_PROGRESS_STATUS_DOWNLOADING
	done        = gantryv1.ProgressStatus_PROGRESS_STATUS_DONE
	exists      = gantryv1.ProgressStatus_PROGRESS_STATUS_EXISTS
)

func TestPlainProgressPrintsStatusChangesOnly(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(0, 0)
	p := newPullProgress(&out, false, 0, func() time.Time { return now })
	p.Update(&gantryv1.PullResponse{Event: &gantryv1.PullResponse_Stage{Stage: "resolving busybox"}})
	p.Update(progressMsg("a", 2000, 0, waiting))
	p.Update(progressMsg("a", 2000, 500, downloading))
	p.Update(progressMsg("a", 2000, 1500, downloading)) // same status: no line
	p.Update(progressMsg("b", 300, 300, exists))
	p.Update(progressMsg("a", 2000, 2000, done))
	p.Done()
	want := strings.Join([]string{
		"resolving busybox",
		"aaaaaaaaaaaa: waiting",
		"aaaaaaaaaaaa: downloading (500 B of 2.00 kB)",
		"bbbbbbbbbbbb: already exists (300 B)",
		"aaaaaaaaaaaa: done (2.00 kB)",
	}, "\n") + "\n"
	if out.String() != want {
		t.Errorf("plain output:\n%s\nwant:\n%s", out.String(), want)
	}
	if strings.Contains(out.String(), "\x1b") {
		t.Error("plain output must hold no escape sequences")
	}
}

func TestTerminalProgressRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(100, 0)
	p := newPullProgress(&out, true, 100, func() time.Time { return now })
	p.Update(progressMsg("a", 4_000_000, 0, waiting))
	p.Update(progressMsg("b", 1000, 0, waiting))
	// The same ref with another digest is another blob.
	other := progressMsg("a", 10, 0, waiting)
	other.GetProgress().Digest = "sha256:" + strings.Repeat("c", 64)
	p.Update(other)
	now = now.Add(2 * time.Second)
	p.Update(progressMsg("a", 4_000_000, 2_000_000, downloading))
	p.Done()
	s := out.String()
	if !strings.Contains(s, "\x1b[3A") {
		t.Errorf("no cursor-up over the two drawn lines in %q", s)
	}
	last := s[strings.LastIndex(s, "\x1b[3A"):]
	if !strings.Contains(last, "2.00 MB / 4.00 MB") || !strings.Contains(last, "1.00 MB/s") {
		t.Errorf("last frame %q lacks bytes, total and speed", last)
	}
	for _, line := range strings.Split(strings.TrimSpace(last), "\n") {
		line = line[strings.LastIndex(line, "\x1b[2K")+4:]
		if len(line) > 100 {
			t.Errorf("line %q is wider than the terminal", line)
		}
	}
	if !strings.Contains(last, "cccccccccccc") {
		t.Errorf("last frame %q lacks the third blob", last)
	}
	if !strings.Contains(last, "[") || !strings.Contains(last, ">") {
		t.Errorf("last frame %q has no bar", last)
	}
}

func TestBar(t *testing.T) {
	tests := []struct {
		off, total int64
		width      int
		want       string
	}{
		{0, 100, 12, "[          ]"},
		{50, 100, 12, "[====>     ]"},
		{100, 100, 12, "[==========]"},
		{200, 100, 12, "[==========]"},
		{5, 0, 6, "[    ]"},
		{1, 2, 2, ""},
	}
	for _, tt := range tests {
		if got := bar(tt.off, tt.total, tt.width); got != tt.want {
			t.Errorf("bar(%d, %d, %d) = %q, want %q", tt.off, tt.total, tt.width, got, tt.want)
		}
	}
}

func TestHumanSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1.00 kB", 1_234_567: "1.23 MB", 45_600_000: "45.6 MB", 789_000_000_000: "789 GB"} {
		if got := humanSize(n); got != want {
			t.Errorf("humanSize(%d) = %q, want %q", n, got, want)
		}
	}
}
