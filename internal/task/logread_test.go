package task

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

func writeEntries(t *testing.T, path string, logs ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range logs {
		data, _ := json.Marshal(LogEntry{Log: l, Stream: "stdout", Time: time.Now()})
		f.Write(append(data, '\n'))
	}
}

func collect(t *testing.T, path string, o LogReadOptions) []string {
	t.Helper()
	var got []string
	err := ReadLog(context.Background(), path, o, func(e LogEntry) error {
		got = append(got, e.Log)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestReadLogTail(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	writeEntries(t, path+".2", "a\n", "b\n")
	writeEntries(t, path+".1", "c\n")
	writeEntries(t, path, "d\n", "e\n")
	for _, tc := range []struct {
		tail int64
		want string
	}{{-1, "abcde"}, {2, "de"}, {4, "bcde"}, {0, ""}} {
		got := ""
		for _, l := range collect(t, path, LogReadOptions{Tail: tc.tail}) {
			got += l[:1]
		}
		if got != tc.want {
			t.Errorf("tail %d: %q, want %q", tc.tail, got, tc.want)
		}
	}
}

func TestReadLogFollowAcrossRotation(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "log")
	writeEntries(t, path, "1\n")
	var done atomic.Bool
	var ready atomic.Bool
	go func() {
		for !ready.Load() {
			time.Sleep(time.Millisecond)
		}
		writeEntries(t, path, "2\n")
		time.Sleep(maxPoll)
		writeEntries(t, path, "3\n")
		// Rotate: the follower must finish the old file and open the new.
		os.Rename(path, path+".1")
		writeEntries(t, path, "4\n")
		done.Store(true)
	}()
	got := collect(t, path, LogReadOptions{Tail: -1, Follow: true, Done: done.Load, Ready: func() error { ready.Store(true); return nil }})
	want := []string{"1\n", "2\n", "3\n", "4\n"}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}
