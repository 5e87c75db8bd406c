package daemon

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWriteEtcFiles: the files are written in the container directory; a
// host without resolv.conf gives the default servers; a host file that
// cannot be read fails the create with its path, leaving no files.
func TestWriteEtcFiles(t *testing.T) {
	host := t.TempDir()
	oldHosts, oldResolv := hostHostsPath, hostResolvPath
	t.Cleanup(func() { hostHostsPath, hostResolvPath = oldHosts, oldResolv })
	hostHostsPath = filepath.Join(host, "hosts")
	hostResolvPath = filepath.Join(host, "missing")
	if err := os.WriteFile(hostHostsPath, []byte("10.0.0.1 h\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(t.TempDir(), "ctr")
	f, err := writeEtcFiles(dir, "box", false)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{f.Hostname: "box\n", f.Hosts: "127.0.1.1\tbox\n", f.ResolvConf: "nameserver 8.8.8.8\n"} {
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), want) || filepath.Dir(path) != dir {
			t.Errorf("%s: %q, %v; want a file in %s containing %q", path, b, err, dir, want)
		}
	}
	if f, err := writeEtcFiles(filepath.Join(t.TempDir(), "h"), "box", true); err != nil {
		t.Fatal(err)
	} else if b, _ := os.ReadFile(f.Hosts); string(b) != "10.0.0.1 h\n" {
		t.Errorf("host network: hosts %q, want the host's", b)
	}

	hostResolvPath = host // a directory: cannot be read as a file
	dir = filepath.Join(t.TempDir(), "bad")
	if _, err := writeEtcFiles(dir, "box", false); err == nil || !strings.Contains(err.Error(), host) {
		t.Errorf("unreadable host resolv.conf: err %v, want one naming %s", err, host)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("unreadable host resolv.conf: %d files written", len(ents))
	}
}
