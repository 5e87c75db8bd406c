package shim

import (
	"bytes"
	"testing"

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
