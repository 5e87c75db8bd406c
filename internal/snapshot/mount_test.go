package snapshot

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		in    []string
		flags uintptr
		data  string
	}{
		{nil, 0, ""},
		{[]string{"ro", "rbind"}, unix.MS_RDONLY | unix.MS_BIND | unix.MS_REC, ""},
		{[]string{"ro", "rw", "nosuid"}, unix.MS_NOSUID, ""},
		{[]string{"lowerdir=/a:/b", "ro", "upperdir=/u"}, unix.MS_RDONLY, "lowerdir=/a:/b,upperdir=/u"},
	}
	for _, tt := range tests {
		flags, data := parseOptions(tt.in)
		if flags != tt.flags || data != tt.data {
			t.Errorf("parseOptions(%q) = %#x %q, want %#x %q", tt.in, flags, data, tt.flags, tt.data)
		}
	}
}

func TestCommonDir(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"/r/snapshots/1/fs", "/r/snapshots/2/fs", "/r/snapshots/2/work"}, "/r/snapshots"},
		{[]string{"/r/snapshots/1/fs", "/r/snapshots/1/work"}, "/r/snapshots/1"},
		{[]string{"/r/s/1/fs"}, "/r/s/1"},
		{[]string{"/a/x", "/b/y"}, "/"},
		{[]string{"/r/s", "/r/s/1"}, "/r"},
	}
	for _, tt := range tests {
		if got := commonDir(tt.in); got != tt.want {
			t.Errorf("commonDir(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestMountAllLongOverlay mounts an overlay whose options exceed one page.
func TestMountAllLongOverlay(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mount needs root")
	}
	base := t.TempDir()
	// Long directory names make 40 layers exceed a page.
	long := filepath.Join(base, strings.Repeat("d", 100))
	var lowers []string
	for i := range 40 {
		l := filepath.Join(long, strings.Repeat("l", 20)+string(rune('A'+i%26))+strings.Repeat("x", i))
		if err := os.MkdirAll(l, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(l, "f"+string(rune('A'+i%26))+strings.Repeat("x", i)), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		lowers = append(lowers, l)
	}
	target := filepath.Join(base, "m")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { UnmountAll(target) })
	m := Mount{Type: "overlay", Source: "overlay", Options: []string{"ro", "lowerdir=" + strings.Join(lowers, ":")}}
	if _, data := parseOptions(m.Options); len(data) <= maxMountData {
		t.Fatalf("options are only %d bytes", len(data))
	}
	wd, _ := os.Getwd()
	if err := MountAll([]Mount{m}, target); err != nil {
		t.Fatal(err)
	}
	if now, _ := os.Getwd(); now != wd {
		t.Errorf("working directory changed to %q", now)
	}
	ents, err := os.ReadDir(target)
	if err != nil || len(ents) != 40 {
		t.Errorf("merged view has %d entries (%v), want 40", len(ents), err)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	var st, pst unix.Stat_t
	unix.Stat(target, &st)
	unix.Stat(base, &pst)
	if st.Dev != pst.Dev {
		t.Error("target still mounted after UnmountAll")
	}
}
