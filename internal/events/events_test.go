package events

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

func TestFilter(t *testing.T) {
	ev := Event{Namespace: "default", Topic: "/tasks/exit", ID: "c1"}
	for _, tc := range []struct {
		filters []string
		want    bool
	}{
		{nil, true},
		{[]string{"topic=/tasks/exit"}, true},
		{[]string{"topic=/tasks/*"}, true},
		{[]string{"topic=/containers/*"}, false},
		{[]string{"topic=/containers/*", "topic=/tasks/exit"}, true},
		{[]string{"topic=/tasks/exit", "id=c2"}, false},
		{[]string{"id==c1", "namespace=default"}, true},
	} {
		f, err := ParseFilter(tc.filters)
		if err != nil {
			t.Fatalf("%v: %v", tc.filters, err)
		}
		if got := f.Match(ev); got != tc.want {
			t.Errorf("%v: match = %v, want %v", tc.filters, got, tc.want)
		}
	}
	for _, bad := range []string{"topic", "color=red", "id="} {
		if _, err := ParseFilter([]string{bad}); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestResumeAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := b.Publish("ns", "/tasks/start", id, nil); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	b, err = Open(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if got := b.Sequence(); got != 4 {
		t.Fatalf("sequence after reopen = %d, want 4", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- b.Subscribe(ctx, 2, nil, func(ev Event) error {
			got = append(got, ev.ID)
			if ev.ID == "e" {
				return errStop
			}
			return nil
		})
	}()
	// Publish until the subscriber has seen it (it may subscribe late).
	for {
		if _, err := b.Publish("ns", "/tasks/start", "e", nil); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if !errors.Is(err, errStop) {
				t.Fatal(err)
			}
			if len(got) < 3 || got[0] != "c" || got[1] != "d" || got[2] != "e" {
				t.Fatalf("replayed %v, want c d e first", got)
			}
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errStop = errors.New("stop")
