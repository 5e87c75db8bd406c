package shim

import (
	"bytes"
	"testing"
	"time"

	shimapi "github.com/gantry-project/gantry/api/shim/v1"
)

// drain collects what an attacher would be sent until the hub closes.
func drain(h *outputHub, s *outSub, pending []outChunk) []outChunk {
	got := append([]outChunk(nil), pending...)
	for {
		select {
		case c := <-s.ch:
			got = append(got, c)
		case <-h.done:
			for {
				select {
				case c := <-s.ch:
					got = append(got, c)
				default:
					return got
				}
			}
		}
	}
}

func TestOutputHub(t *testing.T) {
	big := bytes.Repeat([]byte("x"), shimapi.OutputHoldMax)
	tests := []struct {
		name   string
		hold   bool
		before [][]byte // written before the attacher
		after  [][]byte // written after it
		want   string
	}{
		{"container drops output nobody reads", false, [][]byte{[]byte("early")}, [][]byte{[]byte("late")}, "late"},
		{"exec holds output for its first attacher", true, [][]byte{[]byte("a"), []byte("b")}, [][]byte{[]byte("c")}, "abc"},
		{"held output is bounded", true, [][]byte{[]byte("a"), big}, [][]byte{[]byte("c")}, "ac"},
		{"nothing written", true, nil, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newOutputHub(tc.hold)
			for _, b := range tc.before {
				h.write(shimapi.OutputStdout, b)
			}
			s, pending := h.attach()
			done := make(chan []outChunk)
			go func() { done <- drain(h, s, pending) }()
			for _, b := range tc.after {
				h.write(shimapi.OutputStderr, b)
			}
			h.close()
			var got bytes.Buffer
			for _, c := range <-done {
				got.Write(c.data)
			}
			if got.String() != tc.want {
				t.Errorf("got %q, want %q", got.String(), tc.want)
			}
		})
	}
}

func TestOutputHubClosedBeforeAttach(t *testing.T) {
	h := newOutputHub(true)
	h.write(shimapi.OutputStdout, []byte("last words"))
	h.close()
	h.write(shimapi.OutputStdout, []byte("dropped"))
	s, pending := h.attach()
	got := drain(h, s, pending)
	if len(got) != 1 || string(got[0].data) != "last words" || got[0].stream != shimapi.OutputStdout {
		t.Fatalf("got %+v, want one stdout chunk \"last words\"", got)
	}
}

// TestWaitingHubKeepsEverything: a hub that waits for its attacher (the
// init of a shim started with HoldOutput) holds what fits, then makes the
// writer wait instead of dropping; the attacher gets every byte in order.
func TestWaitingHubKeepsEverything(t *testing.T) {
	h := newWaitingHub()
	chunk := bytes.Repeat([]byte("y"), 64<<10)
	const n = 10 // 640 KiB: more than the hold
	wrote := make(chan struct{})
	go func() {
		defer close(wrote)
		for i := 0; i < n; i++ {
			h.write(shimapi.OutputStdout, chunk)
		}
	}()
	// The writer fills the hold and then waits.
	deadline := time.Now().Add(10 * time.Second)
	for {
		h.mu.Lock()
		held := h.held
		h.mu.Unlock()
		if held+len(chunk) > shimapi.OutputHoldMax {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the hold never filled: %d bytes", held)
		}
		time.Sleep(time.Millisecond)
	}
	select {
	case <-wrote:
		t.Fatal("every write returned before an attacher came: output beyond the hold was dropped")
	case <-time.After(50 * time.Millisecond):
	}
	select {
	case <-h.released():
		t.Fatal("released before the attacher")
	default:
	}
	s, pending := h.attach()
	got := make(chan []outChunk)
	go func() { got <- drain(h, s, pending) }()
	<-wrote
	h.close()
	total := 0
	for _, c := range <-got {
		total += len(c.data)
	}
	if total != n*len(chunk) {
		t.Fatalf("attacher got %d bytes, want %d", total, n*len(chunk))
	}
}

// TestWaitingHubRelease: once released (nobody came in time), the hub
// drops what does not fit the hold, as an exec's does; what was held
// still goes to a later attacher.
func TestWaitingHubRelease(t *testing.T) {
	h := newWaitingHub()
	big := bytes.Repeat([]byte("x"), shimapi.OutputHoldMax)
	h.write(shimapi.OutputStdout, []byte("a"))
	wrote := make(chan struct{})
	go func() {
		h.write(shimapi.OutputStdout, big) // does not fit: waits
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("a write beyond the hold returned before the release")
	case <-time.After(50 * time.Millisecond):
	}
	h.release()
	<-wrote
	<-h.released()
	h.close()
	s, pending := h.attach()
	got := drain(h, s, pending)
	if len(got) != 1 || string(got[0].data) != "a" {
		t.Fatalf("got %d chunks, want the one held", len(got))
	}
}

// TestWaitingHubClose: closing the hub frees a writer that waits.
func TestWaitingHubClose(t *testing.T) {
	h := newWaitingHub()
	big := bytes.Repeat([]byte("x"), shimapi.OutputHoldMax+1)
	wrote := make(chan struct{})
	go func() {
		h.write(shimapi.OutputStdout, big)
		close(wrote)
	}()
	select {
	case <-wrote:
		t.Fatal("the write returned before the close")
	case <-time.After(50 * time.Millisecond):
	}
	h.close()
	<-wrote
}
