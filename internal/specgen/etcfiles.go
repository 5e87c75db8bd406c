package specgen

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// EtcFiles are the host paths of the files a container gets on
// /etc/hostname, /etc/hosts and /etc/resolv.conf, as docker gives them:
// gantryd writes them per container (HostsFile, ResolvConf) and Generate
// bind-mounts them, read-only when the root filesystem is, unless the
// user mounts something on the same path. An empty path mounts nothing.
type EtcFiles struct {
	Hostname, Hosts, ResolvConf string
}

// HostsFile is a container's /etc/hosts. With the host's network it is a
// copy of the host's file (hostHosts); otherwise it names localhost for
// both loopback addresses and the container's hostname for 127.0.1.1
// (the network namespace has only loopback), with the IPv6 names glibc
// and busybox expect.
func HostsFile(hostname string, hostNetwork bool, hostHosts []byte) []byte {
	if hostNetwork {
		return bytes.Clone(hostHosts)
	}
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n")
	b.WriteString("::1\tlocalhost ip6-localhost ip6-loopback\n")
	b.WriteString("fe00::0\tip6-localnet\n")
	b.WriteString("ff00::0\tip6-mcastprefix\n")
	b.WriteString("ff02::1\tip6-allnodes\n")
	b.WriteString("ff02::2\tip6-allrouters\n")
	if hostname != "" {
		b.WriteString("127.0.1.1\t" + hostname + "\n")
	}
	return []byte(b.String())
}

// DefaultNameservers are what a container outside the host's network gets
// when the host's resolv.conf names only loopback servers, which the
// container cannot reach (docker's defaults).
var DefaultNameservers = []string{"8.8.8.8", "8.8.4.4"}

// ResolvConf is a container's /etc/resolv.conf from the host's
// (hostResolv, possibly empty). With the host's network it is a copy.
// Otherwise the nameserver lines that name a loopback address are left
// out (a resolver on the host's 127.0.0.53 is not the container's), and
// when no nameserver is left DefaultNameservers are added, as docker
// does; search, options and comments are kept.
func ResolvConf(hostResolv []byte, hostNetwork bool) []byte {
	if hostNetwork {
		return bytes.Clone(hostResolv)
	}
	var out bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(hostResolv))
	for sc.Scan() {
		line := sc.Text()
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			addr, err := netip.ParseAddr(strings.SplitN(f[1], "%", 2)[0])
			if err == nil && addr.IsLoopback() {
				continue
			}
			servers++
		}
		out.WriteString(line)
		out.WriteByte('\n')
	}
	if servers == 0 {
		for _, ns := range DefaultNameservers {
			out.WriteString("nameserver " + ns + "\n")
		}
	}
	return out.Bytes()
}
