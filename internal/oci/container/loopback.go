package container

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// newNetNSIndex returns the index in linux.namespaces of a network
// namespace that the container creates (no path), or -1 when it has none
// or joins one by path.
func newNetNSIndex(s *specs.Spec) int {
	if s.Linux == nil {
		return -1
	}
	for i, ns := range s.Linux.Namespaces {
		if ns.Type == specs.NetworkNamespace && ns.Path == "" {
			return i
		}
	}
	return -1
}

// loopbackUp brings the loopback interface of the calling thread's network
// namespace up, as runc, crun and docker do for a new one: the kernel then
// gives it 127.0.0.1 and ::1. It sets IFF_UP with SIOCGIFFLAGS and
// SIOCSIFFLAGS on a datagram socket, which needs CAP_NET_ADMIN over the
// namespace (the init has it: it is root in the user namespace that owns a
// namespace it created).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCGIFFLAGS: %w", err)
	}
	flags := ifr.Uint16()
	if flags&unix.IFF_UP != 0 {
		return nil
	}
	ifr.SetUint16(flags | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("SIOCSIFFLAGS: %w", err)
	}
	return nil
}
