package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/gantry-project/gantry/internal/specgen"
)

// The host files a container's /etc/hosts and /etc/resolv.conf start
// from (variables for tests).
var (
	hostHostsPath  = "/etc/hosts"
	hostResolvPath = "/etc/resolv.conf"
)

// writeEtcFiles makes the container directory dir and writes in it the
// container's hostname, hosts and resolv.conf (specgen.HostsFile,
// specgen.ResolvConf, from the host's files now), which the spec
// bind-mounts on /etc as docker does: `localhost` and the container's
// own name resolve, and the host's name servers are used unless they are
// loopback ones the container cannot reach. They live with the container
// (not in the bundle under the state directory), so a container started
// again after a reboot finds them.
func writeEtcFiles(dir, hostname string, hostNetwork bool) (specgen.EtcFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return specgen.EtcFiles{}, fmt.Errorf("create container directory: %w", err)
	}
	read := func(path string) ([]byte, error) {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the host's %s: %w", path, err)
		}
		return data, nil
	}
	var hosts []byte
	if hostNetwork { // otherwise HostsFile does not use it
		var err error
		if hosts, err = read(hostHostsPath); err != nil {
			return specgen.EtcFiles{}, err
		}
	}
	resolv, err := read(hostResolvPath)
	if err != nil {
		return specgen.EtcFiles{}, err
	}
	f := specgen.EtcFiles{
		Hostname:   filepath.Join(dir, "hostname"),
		Hosts:      filepath.Join(dir, "hosts"),
		ResolvConf: filepath.Join(dir, "resolv.conf"),
	}
	for path, data := range map[string][]byte{
		f.Hostname:   []byte(hostname + "\n"),
		f.Hosts:      specgen.HostsFile(hostname, hostNetwork, hosts),
		f.ResolvConf: specgen.ResolvConf(resolv, hostNetwork),
	} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return specgen.EtcFiles{}, fmt.Errorf("write %s: %w", path, err)
		}
	}
	return f, nil
}
