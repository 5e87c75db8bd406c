package events

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
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

// TestSequenceAfterCrash: events are written in the background; a gantryd
// that dies before the last ones are written restarts above every
// sequence number it gave out, and what was written is replayed.
func TestSequenceAfterCrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		if _, err := b.Publish("ns", "/tasks/start", id, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Flush(); err != nil {
		t.Fatal(err)
	}
	// The writer is held: these two are never written.
	b.wmu.Lock()
	var last uint64
	for _, id := range []string{"c", "d"} {
		ev, err := b.Publish("ns", "/tasks/start", id, nil)
		if err != nil {
			t.Fatal(err)
		}
		last = ev.Sequence
	}
	// "Crash": the file is closed without Close's final writes.
	if err := b.db.Close(); err != nil {
		t.Fatal(err)
	}
	b.wmu.Unlock()

	b2, err := Open(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if got := b2.Sequence(); got <= last {
		t.Fatalf("sequence after the crash = %d, want above %d (given out before it)", got, last)
	}
	ev, err := b2.Publish("ns", "/tasks/start", "e", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Sequence <= last {
		t.Fatalf("first event after the crash has sequence %d, want above %d", ev.Sequence, last)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var got []string
	err = b2.Subscribe(ctx, 1, nil, func(ev Event) error {
		got = append(got, ev.ID)
		if ev.ID == "e" {
			return errStop
		}
		return nil
	})
	if !errors.Is(err, errStop) {
		t.Fatal(err)
	}
	if strings.Join(got, " ") != "b e" {
		t.Fatalf("replayed %v after sequence 1, want b (written) then e", got)
	}
}

// TestRingTrimmedOnDisk: only the last capacity events stay in the file.
func TestRingTrimmedOnDisk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "events.db")
	b, err := Open(path, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := b.Publish("ns", "/tasks/start", fmt.Sprint(i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var ids []string
	db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			var ev Event
			if err := json.Unmarshal(v, &ev); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, ev.ID)
			return nil
		})
	})
	if strings.Join(ids, " ") != "7 8 9" {
		t.Fatalf("events on disk %v, want 7 8 9", ids)
	}
}
