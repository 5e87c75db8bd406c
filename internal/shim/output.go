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
// shimapi.OutputHoldMax bytes) and given to it.
type outputHub struct {
	mu      sync.Mutex
	subs    map[*outSub]struct{}
	hold    bool
	pending []outChunk
	held    int
	closed  bool
	done    chan struct{}
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

// write hands a copy of data to every attacher.
func (h *outputHub) write(stream byte, data []byte) {
	if len(data) == 0 {
		return
	}
	c := outChunk{stream, append([]byte(nil), data...)}
	h.mu.Lock()
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

// close ends the output: attachers get what was sent, then EOF.
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
