package content

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// TestFetchWaiterRunsOwnFetchAfterSharedFailure: the single flight is keyed
// by digest only, so a caller may join a run that reads from another source.
// When that run fails (a hostile source's digest mismatch, a 404), a waiter
// whose context is live runs its own fetch, once, instead of inheriting the
// failure; the caller whose fetch failed gets its own error.
func TestFetchWaiterRunsOwnFetchAfterSharedFailure(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lead  func(w *Writer, b []byte) error
		check func(error) bool
	}{
		{"digest mismatch", func(w *Writer, b []byte) error {
			_, err := w.Write(blob(len(b), 9)) // right size, wrong bytes
			return err
		}, errdefs.IsInvalidArgument},
		{"not found", func(w *Writer, b []byte) error {
			return fmt.Errorf("blob: %w", errdefs.ErrNotFound)
		}, errdefs.IsNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			s := newStore(t)
			b := blob(50000, 3)
			d := descOf(b)
			started, release := make(chan struct{}), make(chan struct{})
			var leadCalls, waitCalls atomic.Int32
			leadErr := make(chan error, 1)
			go func() {
				leadErr <- s.Fetch(ctx, d, func(w *Writer) error {
					leadCalls.Add(1)
					close(started)
					<-release
					return tc.lead(w, b)
				})
			}()
			<-started
			waitErr := make(chan error, 1)
			go func() {
				waitErr <- s.Fetch(ctx, d, func(w *Writer) error {
					waitCalls.Add(1)
					if w.Offset() != 0 {
						return fmt.Errorf("own fetch starts at %d, want 0", w.Offset())
					}
					_, err := w.Write(b)
					return err
				})
			}()
			// Let the waiter join the running flight (it cannot start
			// its own while the leader's runs).
			time.Sleep(50 * time.Millisecond)
			close(release)
			if err := <-leadErr; !tc.check(err) {
				t.Fatalf("leader: %v", err)
			}
			if err := <-waitErr; err != nil {
				t.Fatalf("waiter inherited the leader's failure: %v", err)
			}
			if n, m := leadCalls.Load(), waitCalls.Load(); n != 1 || m != 1 {
				t.Fatalf("leader's fetch ran %d times, waiter's %d; want 1 and 1", n, m)
			}
			if err := s.Verify(ctx, d.Digest); err != nil {
				t.Fatal(err)
			}
		})
	}
}
