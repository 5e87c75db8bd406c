package containers

import (
	"os"
	"strings"
	"testing"
)

// TestEtcFiles: a container gets /etc/hostname, /etc/hosts and
// /etc/resolv.conf as docker gives them: localhost resolves and reaches a
// server on the loopback interface, the hostname is the short id (the
// host's with --network host, whose /etc/hosts is the host's), and the
// files are read-only with --read-only.
func TestEtcFiles(t *testing.T) {
	e := newEnv(t)
	out := e.mustGantry("run", "--rm", "--name", "etc", "busybox", "sh", "-c",
		`hostname; cat /etc/hostname; grep -c localhost /etc/hosts; grep -c nameserver /etc/resolv.conf; `+
			`httpd -p 127.0.0.1:8080 -h /etc && wget -q -O- http://localhost:8080/hostname`)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("container output %q: want 5 lines", out)
	}
	if len(lines[0]) != 12 || lines[1] != lines[0] || lines[4] != lines[0] {
		t.Errorf("hostname %q, /etc/hostname %q, over http://localhost %q: want the short id three times", lines[0], lines[1], lines[4])
	}
	if lines[2] == "0" || lines[3] == "0" {
		t.Errorf("/etc/hosts has %s localhost lines, /etc/resolv.conf %s nameservers: want some", lines[2], lines[3])
	}

	hostName, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	hostHosts, err := os.ReadFile("/etc/hosts")
	if err != nil {
		t.Fatal(err)
	}
	out = e.mustGantry("run", "--rm", "--network", "host", "busybox", "sh", "-c", "hostname; cat /etc/hosts")
	if want := hostName + "\n" + string(hostHosts); out != want {
		t.Errorf("--network host: hostname and /etc/hosts %q, want the host's %q", out, want)
	}

	if _, _, code := e.gantry("run", "--rm", "--read-only", "busybox", "sh", "-c", "echo 10.0.0.9 x >> /etc/hosts"); code == 0 {
		t.Error("--read-only: /etc/hosts is writable")
	}
	if out := e.mustGantry("run", "--rm", "busybox", "sh", "-c", "echo 10.0.0.9 x >> /etc/hosts && grep -c 10.0.0.9 /etc/hosts"); out != "1\n" {
		t.Errorf("writing /etc/hosts: %q", out)
	}
	e.assertClean()
}
