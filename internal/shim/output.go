package shim

import (
	"encoding/binary"
	"io"
	"net"
	"sync"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
)

// outChunk is one read of a process's output.
type outChunk struct {
	stream byte
	data   []byte
}

// outputHub hands the raw output of one process to its live attachers
// (AttachOutput). Writers block while an attacher is slow (backpressure, as
// a terminal would give), never when nobody listens. With hold set, the
// output written before the first attacher is kept (up to
// shimapi.OutputHoldMax bytes) and given to it; beyond that it is dropped,
// unless the hub waits for its attacher (newWaitingHub): then a writer
// blocks once the hold is full, until the first attacher comes or the wait
// ends (release, close).
type outputHub struct {
	mu      sync.Mutex
	subs    map[*outSub]struct{}
	hold    bool
	pending []outChunk
	held    int
	closed  bool
	done    chan struct{}
	// waiting is closed when the hub stops waiting for its first attacher
	// (attach, release or close); nil when it never waited.
	waiting     chan struct{}
	waitingOnce sync.Once
}

// outSub is one attacher.
type outSub struct {
	ch       chan outChunk
	gone     chan struct{}
	goneOnce sync.Once
}

func (o *outSub) leave() { o.goneOnce.Do(func() { close(o.gone) }) }

func newOutputHub(hold bool) *outputHub {
	return &outputHub{subs: map[*outSub]struct{}{}, hold: hold, done: make(chan struct{})}
}

// newWaitingHub returns a hub that holds the output for a first attacher
// that is on its way: what does not fit the hold waits for it (the
// process's writes block meanwhile, as on a terminal nobody reads) rather
// than being dropped, until release or close.
func newWaitingHub() *outputHub {
	h := newOutputHub(true)
	h.waiting = make(chan struct{})
	return h
}

// holdForAttacher makes a hub that has no attacher wait for its first
// attacher, as newWaitingHub's does: for the init of a created container
// whose start holds its output. A hub that already waits or has an
// attacher is left as it is.
func (h *outputHub) holdForAttacher() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting != nil || h.closed || len(h.subs) > 0 {
		return
	}
	h.hold = true
	h.waiting = make(chan struct{})
}

// release ends the wait for the first attacher: output that does not fit
// the hold is dropped from then on, as for any hub that holds.
func (h *outputHub) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.releaseLocked()
}

// releaseLocked is release with h.mu held.
func (h *outputHub) releaseLocked() {
	if h.waiting != nil {
		h.waitingOnce.Do(func() { close(h.waiting) })
	}
}

// released is closed once the hub no longer waits for its first attacher
// (at once for a hub that never waited).
func (h *outputHub) released() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting == nil {
		return closedChan
	}
	return h.waiting
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// write hands a copy of data to every attacher.
func (h *outputHub) write(stream byte, data []byte) {
	if len(data) == 0 {
		return
	}
	c := outChunk{stream, append([]byte(nil), data...)}
	h.mu.Lock()
	for h.hold && h.waiting != nil && !isClosed(h.waiting) && !h.closed && h.held+len(c.data) > shimapi.OutputHoldMax {
		// The hold is full and the first attacher is on its way: wait.
		waiting := h.waiting
		h.mu.Unlock()
		select {
		case <-waiting:
		case <-h.done:
		}
		h.mu.Lock()
	}
	if h.closed {
		h.mu.Unlock()
		return
	}
	if len(h.subs) == 0 {
		if h.hold && h.held+len(c.data) <= shimapi.OutputHoldMax {
			h.pending = append(h.pending, c)
			h.held += len(c.data)
		}
		h.mu.Unlock()
		return
	}
	subs := make([]*outSub, 0, len(h.subs))
	for s := range h.subs {
		subs = append(subs, s)
	}
	h.mu.Unlock()
	for _, s := range subs {
		select {
		case s.ch <- c:
		case <-s.gone:
		case <-h.done:
		}
	}
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// close ends the output: attachers get what was sent, then EOF. What is
// held stays for a first attacher that comes later.
func (h *outputHub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
}

// attach registers an attacher and returns it with the held output.
func (h *outputHub) attach() (*outSub, []outChunk) {
	s := &outSub{ch: make(chan outChunk, 16), gone: make(chan struct{})}
	h.mu.Lock()
	defer h.mu.Unlock()
	pending := h.pending
	h.pending, h.held, h.hold = nil, 0, false
	if !h.closed {
		h.subs[s] = struct{}{}
	}
	h.releaseLocked()
	return s, pending
}

func (h *outputHub) detach(s *outSub) {
	s.leave()
	h.mu.Lock()
	delete(h.subs, s)
	h.mu.Unlock()
}

// serve writes the attacher's frames to conn until the output ends or the
// client goes away.
func (h *outputHub) serve(conn *net.UnixConn, s *outSub, pending []outChunk) {
	defer h.detach(s)
	go func() {
		// The client sends nothing: EOF or an error means it left.
		var b [1]byte
		conn.Read(b[:])
		s.leave()
	}()
	for _, c := range pending {
		if writeFrame(conn, c) != nil {
			return
		}
	}
	for {
		select {
		case c := <-s.ch:
			if writeFrame(conn, c) != nil {
				return
			}
		case <-s.gone:
			return
		case <-h.done:
			for {
				select {
				case c := <-s.ch:
					if writeFrame(conn, c) != nil {
						return
					}
				default:
					return
				}
			}
		}
	}
}

func writeFrame(w io.Writer, c outChunk) error {
	var hdr [5]byte
	hdr[0] = c.stream
	binary.BigEndian.PutUint32(hdr[1:], uint32(len(c.data)))
	if _, err := w.Write(hdr[:]); err != nil {
		return err
	}
	_, err := w.Write(c.data)
	return err
}

// hubWriter writes to a hub as one stream.
type hubWriter struct {
	h      *outputHub
	stream byte
}

func (w hubWriter) Write(p []byte) (int, error) {
	w.h.write(w.stream, p)
	return len(p), nil
}

// copyOutput copies one output stream of p: to its attachers, and for the
// container also to the log, one entry a line.
func (s *Shim) copyOutput(p *process, stream string, r io.Reader) {
	id := byte(shimapi.OutputStdout)
	if stream == "stderr" {
		id = shimapi.OutputStderr
	}
	w := hubWriter{p.out, id}
	if p.execID != "" {
		io.Copy(w, r)
		return
	}
	s.log.copyLines(stream, io.TeeReader(r, w))
}

// attachOutput is AttachOutput's result: encoded as {}, then the frames.
type attachOutput struct {
	h       *outputHub
	s       *outSub
	pending []outChunk
}

func (attachOutput) MarshalJSON() ([]byte, error) { return []byte("{}"), nil }
