package nsexec

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestEncode(t *testing.T) {
	b := &Bootstrap{
		CloneFlags:  unix.CLONE_NEWNS | unix.CLONE_NEWPID,
		Joins:       []Join{{"net", "/proc/1/ns/net"}},
		TimeOffsets: []string{"monotonic 5 0"},
		Fork:        true,
	}
	got, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := "clone 20020000\njoin net /proc/1/ns/net\ntimens monotonic 5 0\nfork 1\n\n"
	if string(got) != want {
		t.Fatalf("Encode() = %q, want %q", got, want)
	}
	bad := &Bootstrap{Joins: []Join{{"net", "/a\nb"}}}
	if _, err := bad.Encode(); err == nil {
		t.Fatal("a path with a newline was encoded")
	}
}

func TestDriveReplies(t *testing.T) {
	for _, tc := range []struct {
		name, replies, wantErr, wantWritten string
		wantPid                             int
	}{
		{name: "pid", replies: "pid 42\n", wantPid: 42},
		{name: "usermap", replies: "usermap 7\npid 8\n", wantPid: 8, wantWritten: "ok\n"},
		{name: "error", replies: "error nsexec: join net namespace /x: No such file\n", wantErr: "nsexec: join net namespace /x: No such file"},
		{name: "eof", replies: "", wantErr: "exited without reporting"},
		{name: "garbage", replies: "hello\n", wantErr: "unexpected line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var w bytes.Buffer
			mapped := 0
			pid, err := Drive(&w, bufio.NewReader(strings.NewReader(tc.replies)), &Bootstrap{}, func(p int) error { mapped = p; return nil })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || pid != tc.wantPid {
				t.Fatalf("Drive() = %d, %v; want %d", pid, err, tc.wantPid)
			}
			if !strings.HasSuffix(w.String(), "\n\n"+tc.wantWritten) {
				t.Fatalf("written %q, want suffix %q", w.String(), tc.wantWritten)
			}
			if tc.wantWritten != "" && mapped != 7 {
				t.Fatalf("usermap called with %d", mapped)
			}
		})
	}
}
