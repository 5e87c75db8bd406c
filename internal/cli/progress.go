package cli

import (
	"fmt"
	"io"
	"strings"
	"time"

	gantryv1 "github.com/gantry-project/gantry/api/gantry/v1"
)

// redrawInterval bounds how often the terminal display is redrawn.
const redrawInterval = 100 * time.Millisecond

// pullProgress shows a pull: in a terminal, one bar per blob with bytes,
// total and speed, redrawn in place; otherwise one plain line each time a
// blob changes status (waiting, downloading, done, exists, error) and for
// each stage.
type pullProgress struct {
	out   io.Writer
	tty   bool
	width int
	now   func() time.Time

	blobs    []*blobState
	byRef    map[string]*blobState
	stage    string
	drawn    int // lines drawn by the last redraw
	lastDraw time.Time
}

type blobState struct {
	ref     string
	digest  string
	total   int64
	offset  int64
	status  gantryv1.ProgressStatus
	err     string
	printed gantryv1.ProgressStatus // plain mode: last status printed

	// speed: bytes downloaded since first seen, over the time since
	// then; a resumed ingest's first offset is not counted.
	firstOffset int64
	firstSeen   time.Time
	finished    time.Time
}

func newPullProgress(out io.Writer, tty bool, width int, now func() time.Time) *pullProgress {
	if width <= 0 {
		width = 80
	}
	return &pullProgress{out: out, tty: tty, width: width, now: now, byRef: map[string]*blobState{}}
}

func (p *pullProgress) label(b *blobState) string {
	if b.digest != "" {
		return shortDigest(b.digest)
	}
	return b.ref
}

// Update records one event of the pull stream and shows it.
func (p *pullProgress) Update(msg *gantryv1.PullResponse) {
	now := p.now()
	if s, ok := msg.GetEvent().(*gantryv1.PullResponse_Stage); ok {
		p.stage = s.Stage
		if !p.tty {
			fmt.Fprintln(p.out, s.Stage)
			return
		}
		p.redraw(now, true)
		return
	}
	pr := msg.GetProgress()
	if pr == nil {
		return
	}
	// A pull may report every blob under the image's ref: the digest is
	// what tells blobs apart.
	key := pr.GetDigest()
	if key == "" {
		key = pr.GetRef()
	}
	b, ok := p.byRef[key]
	if !ok {
		b = &blobState{ref: key, firstOffset: pr.GetOffset(), firstSeen: now}
		p.byRef[key] = b
		p.blobs = append(p.blobs, b)
	}
	changed := b.status != pr.GetStatus()
	b.digest, b.total, b.offset, b.status, b.err = pr.GetDigest(), pr.GetTotal(), pr.GetOffset(), pr.GetStatus(), pr.GetError()
	if finished(b.status) && b.finished.IsZero() {
		b.finished = now
	}
	if p.tty {
		p.redraw(now, changed)
		return
	}
	if b.status != b.printed {
		b.printed = b.status
		fmt.Fprintln(p.out, p.plainLine(b))
	}
}

func finished(s gantryv1.ProgressStatus) bool {
	return s == gantryv1.ProgressStatus_PROGRESS_STATUS_DONE || s == gantryv1.ProgressStatus_PROGRESS_STATUS_EXISTS || s == gantryv1.ProgressStatus_PROGRESS_STATUS_ERROR
}

func statusWord(s gantryv1.ProgressStatus) string {
	switch s {
	case gantryv1.ProgressStatus_PROGRESS_STATUS_WAITING:
		return "waiting"
	case gantryv1.ProgressStatus_PROGRESS_STATUS_DOWNLOADING:
		return "downloading"
	case gantryv1.ProgressStatus_PROGRESS_STATUS_DONE:
		return "done"
	case gantryv1.ProgressStatus_PROGRESS_STATUS_EXISTS:
		return "exists"
	case gantryv1.ProgressStatus_PROGRESS_STATUS_ERROR:
		return "error"
	}
	return "unknown"
}

// plainLine is "<digest>: <status> <bytes>" for a log or a pipe.
func (p *pullProgress) plainLine(b *blobState) string {
	switch b.status {
	case gantryv1.ProgressStatus_PROGRESS_STATUS_ERROR:
		return fmt.Sprintf("%s: error: %s", p.label(b), b.err)
	case gantryv1.ProgressStatus_PROGRESS_STATUS_EXISTS:
		return fmt.Sprintf("%s: already exists (%s)", p.label(b), humanSize(b.total))
	case gantryv1.ProgressStatus_PROGRESS_STATUS_DONE:
		return fmt.Sprintf("%s: done (%s)", p.label(b), humanSize(b.total))
	case gantryv1.ProgressStatus_PROGRESS_STATUS_DOWNLOADING:
		return fmt.Sprintf("%s: downloading (%s of %s)", p.label(b), humanSize(b.offset), humanSize(b.total))
	default:
		return fmt.Sprintf("%s: %s", p.label(b), statusWord(b.status))
	}
}

// speed is the blob's download rate in bytes per second, 0 if unknown.
func (b *blobState) speed(now time.Time) float64 {
	end := now
	if !b.finished.IsZero() {
		end = b.finished
	}
	el := end.Sub(b.firstSeen).Seconds()
	if el <= 0 {
		return 0
	}
	return float64(b.offset-b.firstOffset) / el
}

// bar draws a width-cell progress bar for offset of total.
func bar(offset, total int64, width int) string {
	if width < 3 {
		return ""
	}
	inner := width - 2
	fill := 0
	if total > 0 {
		fill = int(int64(inner) * min(offset, total) / total)
	}
	var s strings.Builder
	s.WriteByte('[')
	switch {
	case fill >= inner:
		s.WriteString(strings.Repeat("=", inner))
	case fill > 0:
		s.WriteString(strings.Repeat("=", fill-1))
		s.WriteByte('>')
		s.WriteString(strings.Repeat(" ", inner-fill))
	default:
		s.WriteString(strings.Repeat(" ", inner))
	}
	s.WriteByte(']')
	return s.String()
}

// ttyLine is one blob's line, at most width cells wide.
func (p *pullProgress) ttyLine(b *blobState, now time.Time) string {
	label := fmt.Sprintf("%-12s %-11s", p.label(b), statusWord(b.status))
	var tail string
	switch b.status {
	case gantryv1.ProgressStatus_PROGRESS_STATUS_ERROR:
		return truncate(label+" "+b.err, p.width)
	case gantryv1.ProgressStatus_PROGRESS_STATUS_EXISTS:
		return truncate(label+" "+humanSize(b.total), p.width)
	default:
		// Fixed-width columns, so that the bars line up.
		speed := ""
		if sp := b.speed(now); sp > 0 {
			speed = humanSize(int64(sp)) + "/s"
		}
		tail = fmt.Sprintf(" %9s / %-9s %11s", humanSize(b.offset), humanSize(b.total), speed)
	}
	barWidth := p.width - len(label) - len(tail) - 2
	if barWidth > 50 {
		barWidth = 50
	}
	if barWidth < 10 {
		return truncate(label+tail, p.width)
	}
	return label + " " + bar(b.offset, b.total, barWidth) + tail
}

func truncate(s string, width int) string {
	if len(s) > width-1 {
		return s[:max(width-1, 0)]
	}
	return s
}

// redraw moves the cursor back over the last drawing and draws every blob
// and the stage again; without force it draws at most every redrawInterval.
func (p *pullProgress) redraw(now time.Time, force bool) {
	if !force && now.Sub(p.lastDraw) < redrawInterval {
		return
	}
	p.lastDraw = now
	var s strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&s, "\x1b[%dA", p.drawn)
	}
	lines := 0
	for _, b := range p.blobs {
		s.WriteString("\r\x1b[2K")
		s.WriteString(p.ttyLine(b, now))
		s.WriteByte('\n')
		lines++
	}
	if p.stage != "" {
		s.WriteString("\r\x1b[2K")
		s.WriteString(truncate(p.stage, p.width))
		s.WriteByte('\n')
		lines++
	}
	p.drawn = lines
	io.WriteString(p.out, s.String())
}

// Done draws the final state.
func (p *pullProgress) Done() {
	if p.tty {
		p.redraw(p.now(), true)
	}
}
