package specgen

import (
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestHostsFile(t *testing.T) {
	got := string(HostsFile("box", false, []byte("10.0.0.1 host\n")))
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "::1\tlocalhost ip6-localhost ip6-loopback\n", "127.0.1.1\tbox\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("HostsFile(box) = %q, want a line %q", got, want)
		}
	}
	if strings.Contains(got, "10.0.0.1") {
		t.Errorf("HostsFile without the host's network copies the host's entries: %q", got)
	}
	if got := string(HostsFile("", false, nil)); strings.Contains(got, "127.0.1.1") {
		t.Errorf("HostsFile without a hostname: %q", got)
	}
	if got := string(HostsFile("box", true, []byte("10.0.0.1 host\n"))); got != "10.0.0.1 host\n" {
		t.Errorf("HostsFile with the host's network = %q, want the host's file", got)
	}
}

func TestResolvConf(t *testing.T) {
	for _, tt := range []struct {
		name, host string
		hostNet    bool
		want       string
	}{
		{"copied with the host's network", "nameserver 127.0.0.53\nsearch lan\n", true, "nameserver 127.0.0.53\nsearch lan\n"},
		{"loopback servers dropped", "# c\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch lan\noptions ndots:2\n", false,
			"# c\nnameserver 10.0.0.2\nsearch lan\noptions ndots:2\n"},
		{"IPv6 loopback and zone", "nameserver ::1\nnameserver fe80::1%eth0\n", false, "nameserver fe80::1%eth0\n"},
		{"only loopback: defaults", "nameserver 127.0.0.1\nsearch lan\n", false, "search lan\nnameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
		{"no host file: defaults", "", false, "nameserver 8.8.8.8\nnameserver 8.8.4.4\n"},
	} {
		if got := string(ResolvConf([]byte(tt.host), tt.hostNet)); got != tt.want {
			t.Errorf("%s: ResolvConf(%q) = %q, want %q", tt.name, tt.host, got, tt.want)
		}
	}
}

// TestEtcMounts: the files are bind-mounted on /etc, read-only with a
// read-only root, and a user's mount on the same path wins.
func TestEtcMounts(t *testing.T) {
	files := EtcFiles{Hostname: "/c/hostname", Hosts: "/c/hosts", ResolvConf: "/c/resolv.conf"}
	user := specs.Mount{Destination: "/etc/resolv.conf", Type: "bind", Source: "/srv/resolv", Options: []string{"rbind", "ro"}}
	for _, ro := range []bool{false, true} {
		spec, err := Generate(defaultImage(), testRootfs, Options{EtcFiles: files, ReadOnly: ro, Mounts: []specs.Mount{user}})
		if err != nil {
			t.Fatal(err)
		}
		s := roundTrip(t, spec)
		for dst, src := range map[string]string{"/etc/hostname": "/c/hostname", "/etc/hosts": "/c/hosts", "/etc/resolv.conf": "/srv/resolv"} {
			m := mountAt(s, dst)
			if m == nil || m.Source != src {
				t.Errorf("readOnly=%v: mount at %s = %+v, want from %s", ro, dst, m, src)
				continue
			}
			if src == "/srv/resolv" {
				continue
			}
			if want := map[bool]string{false: "rw", true: "ro"}[ro]; !slices.Contains(m.Options, want) {
				t.Errorf("readOnly=%v: %s options %v, want %s", ro, dst, m.Options, want)
			}
		}
	}
	spec, err := Generate(defaultImage(), testRootfs, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if m := mountAt(spec, "/etc/hosts"); m != nil {
		t.Errorf("no EtcFiles: mount at /etc/hosts %+v", m)
	}
}
