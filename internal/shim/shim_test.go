package shim

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
)

func readEntries(t *testing.T, path string) []logEntry {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []logEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e logEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		out = append(out, e)
	}
	return out
}

func TestLogLinesAndSplit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log.json")
	l, err := openLog(path, 1<<30, 2)
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", maxLine+10)
	l.copyLines("stdout", strings.NewReader("one\ntwo\n"+long+"\nlast-without-newline"))
	l.close()
	got := readEntries(t, path)
	want := []string{"one\n", "two\n", long[:maxLine], long[maxLine:] + "\n", "last-without-newline"}
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i, e := range got {
		if e.Log != want[i] || e.Stream != "stdout" || e.Time.IsZero() {
			t.Errorf("entry %d = %q %q %v, want %q on stdout", i, e.Log, e.Stream, e.Time, want[i])
		}
	}
}

func TestLogRotation(t *testing.T) {
	tests := []struct {
		name     string
		maxFiles int
		lines    int
		files    []string // that must exist
		absent   []string
	}{
		{"keeps three", 3, 40, []string{"", ".1", ".2"}, []string{".3"}},
		{"one file truncates", 1, 40, []string{""}, []string{".1"}},
		{"no rotation when small", 3, 1, []string{""}, []string{".1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "log.json")
			l, err := openLog(path, 400, tt.maxFiles)
			if err != nil {
				t.Fatal(err)
			}
			l.now = func() time.Time { return time.Unix(0, 0) }
			for i := 0; i < tt.lines; i++ {
				if err := l.write("stderr", []byte("a line of text\n")); err != nil {
					t.Fatal(err)
				}
			}
			l.close()
			for _, s := range tt.files {
				st, err := os.Stat(path + s)
				if err != nil {
					t.Fatalf("%s: %v", path+s, err)
				}
				if st.Size() > 400 {
					t.Errorf("%s: %d bytes, over the 400 limit", path+s, st.Size())
				}
			}
			for _, s := range tt.absent {
				if _, err := os.Stat(path + s); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s exists (err %v)", path+s, err)
				}
			}
		})
	}
}

func TestDurableExitRecord(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadExit(dir); ok || err != nil {
		t.Fatalf("ReadExit of an empty dir = %v, %v", ok, err)
	}
	at := time.Date(2024, 1, 2, 3, 4, 5, 6, time.UTC)
	if err := writeJSON(dir, ExitName, ExitRecord{Pid: 7, ExitStatus: 137, ExitedAt: at}); err != nil {
		t.Fatal(err)
	}
	rec, ok, err := ReadExit(dir)
	if err != nil || !ok || rec.Pid != 7 || rec.ExitStatus != 137 || !rec.ExitedAt.Equal(at) {
		t.Fatalf("ReadExit = %+v, %v, %v", rec, ok, err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}

func TestOptions(t *testing.T) {
	ok := Options{Namespace: "ns", ID: "c", StateDir: "/s", Bundle: "/b", Runtime: "runc", LogPath: "/l"}
	tests := []struct {
		name string
		edit func(*Options)
		ok   bool
	}{
		{"complete", func(*Options) {}, true},
		{"no id", func(o *Options) { o.ID = "" }, false},
		{"relative bundle", func(o *Options) { o.Bundle = "b" }, false},
		{"relative log", func(o *Options) { o.LogPath = "l" }, false},
	}
	for _, tt := range tests {
		o := ok
		tt.edit(&o)
		err := o.Validate()
		if (err == nil) != tt.ok {
			t.Errorf("%s: Validate = %v", tt.name, err)
		}
		if err != nil && !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("%s: %v is not ErrInvalidArgument", tt.name, err)
		}
	}
	o := ok
	o.Stdin, o.Timeout, o.LogMaxFiles = true, time.Second, 2
	args := strings.Join(o.Args(), " ")
	for _, want := range []string{"--id c", "--state-dir /s", "--stdin", "--timeout 1s", "--log-max-files 2"} {
		if !strings.Contains(args, want) {
			t.Errorf("Args %q lack %q", args, want)
		}
	}
}

func TestErrorKindsRoundTrip(t *testing.T) {
	for _, k := range kinds {
		if got := errOfKind(kindOf(k.err)); got != k.err {
			t.Errorf("%v: round trip gives %v", k.err, got)
		}
	}
	if kindOf(errors.New("x")) != "unknown" || errOfKind("unknown") != nil {
		t.Error("an error without a kind must stay without one")
	}
}

func TestContainsArgAndZombie(t *testing.T) {
	if !containsArg([]byte("gantry-shim\x00serve\x00--state-dir\x00/s/x\x00"), "/s/x") {
		t.Error("containsArg misses a present argument")
	}
	if containsArg([]byte("gantry-shim\x00/s/xy\x00"), "/s/x") {
		t.Error("containsArg matches a prefix")
	}
	if !containsZombie([]byte("12 (a) b) Z 1 2")) || containsZombie([]byte("12 (sleep) S 1")) {
		t.Error("containsZombie misreads the state field")
	}
}
