package nsexec

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
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

func TestEncodeExec(t *testing.T) {
	adj := 5
	e := &Exec{OOMScoreAdj: &adj, UID: 7, Args: []string{"/bin/true", "x"}, Env: []string{"A=b"}, Cwd: "/"}
	b := &Bootstrap{Exec: e}
	got, err := b.Encode()
	if err != nil {
		t.Fatal(err)
	}
	text, section, ok := bytes.Cut(got, []byte("\n\n"))
	if !ok || !bytes.HasPrefix(text, []byte("clone 0\nexec ")) {
		t.Fatalf("Encode() = %q: no exec line", got)
	}
	var n int
	if _, err := fmt.Sscanf(string(text), "clone 0\nexec %d", &n); err != nil || n != len(section) {
		t.Fatalf("exec line says %d bytes (%v), %d follow", n, err, len(section))
	}
	// version 1, then the flags: oomScoreAdj and HOME unset
	if binary.LittleEndian.Uint32(section) != 1 || binary.LittleEndian.Uint32(section[4:]) != execOOM {
		t.Errorf("section starts %x", section[:8])
	}
	for _, want := range []string{"/bin/true\x00x\x00", "A=b\x00", `"/bin/true"` + "\x00"} {
		if !bytes.Contains(section, []byte(want)) {
			t.Errorf("section lacks %q", want)
		}
	}
	for _, bad := range []*Exec{
		{Args: []string{"/bin/true"}, Env: []string{"A=\x00"}},
		{Args: nil},
		{Args: []string{"/bin/true"}, Seccomp: []byte{1, 2, 3}},
	} {
		if _, err := (&Bootstrap{Exec: bad}).Encode(); err == nil {
			t.Errorf("Exec %+v was encoded", bad)
		}
	}
}

func TestExecutedReplies(t *testing.T) {
	for _, tc := range []struct{ replies, wantErr string }{
		{"", ""},
		{"error process.cwd \"/x\": no such file or directory\n", `process.cwd "/x": no such file or directory`},
		{"bogus\n", "unexpected line"},
	} {
		err := Executed(bufio.NewReader(strings.NewReader(tc.replies)))
		if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("Executed(%q) = %v, want %q", tc.replies, err, tc.wantErr)
		}
	}
	if pid := LatePid(bufio.NewReader(strings.NewReader("pid 42\n"))); pid != 42 {
		t.Errorf("LatePid = %d, want 42", pid)
	}
	if pid := LatePid(bufio.NewReader(strings.NewReader(""))); pid != 0 {
		t.Errorf("LatePid of nothing = %d", pid)
	}
}
