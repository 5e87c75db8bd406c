package remote

import (
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Capabilities of an endpoint: resolve turns a tag into a digest, pull
// fetches manifests and blobs by digest.
const (
	CapabilityPull    = "pull"
	CapabilityResolve = "resolve"
	CapabilityPush    = "push"
)

// HostsFile is the name of the per-registry file under the hosts directory:
// <dir>/<registry host>/hosts.toml, for example
//
//	# /etc/gantry/hosts.d/registry.k8s.io/hosts.toml
//	server = "https://registry.k8s.io"
//
//	[host."http://127.0.0.1:5000"]
//	  capabilities = ["pull", "resolve"]
//
//	[host."https://mirror.example.com"]
//	  capabilities = ["pull"]
//	  ca = "/etc/gantry/certs/mirror.pem"
//
// Mirrors ([host."..."]) are tried in the order of the file, then the
// server (the origin, https://<registry host> when server is unset).
const HostsFile = "hosts.toml"

// Endpoint is one place a registry's content can be fetched from.
type Endpoint struct {
	// URL is scheme://host[:port]; an endpoint written with http:// may be
	// used over plain HTTP.
	URL *url.URL
	// Capabilities lists what the endpoint may be asked (pull, resolve,
	// push).
	Capabilities []string
	// CAFile, when set, is a PEM bundle trusted for this endpoint in
	// addition to the system roots.
	CAFile string
	// SkipVerify disables TLS certificate verification for this endpoint.
	SkipVerify bool
	// Mirror is false for the origin.
	Mirror bool
}

// Can reports whether the endpoint has capability c.
func (e Endpoint) Can(c string) bool {
	for _, have := range e.Capabilities {
		if have == c {
			return true
		}
	}
	return false
}

// HostConfig is the parsed hosts.toml of one registry host.
type HostConfig struct {
	// File the configuration was read from.
	File string
	// Mirrors in the order they are tried.
	Mirrors []Endpoint
	// Server is the origin.
	Server Endpoint
}

// Hosts is the mirror configuration of every registry host, keyed by the
// host name as it appears in image references (docker.io for Docker Hub).
// The zero value and nil have no configuration: every host is its own
// origin over https.
type Hosts struct {
	hosts map[string]*HostConfig
}

// LoadHosts reads <dir>/<host>/hosts.toml for every directory under dir. A
// missing dir gives an empty configuration; an unreadable file, a TOML
// error, an unknown key or a bad value is an ErrInvalidArgument error naming
// the file and the key.
func LoadHosts(dir string) (*Hosts, error) {
	h := &Hosts{hosts: map[string]*HostConfig{}}
	entries, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return h, nil
		}
		return nil, fmt.Errorf("read hosts directory %s: %w", dir, err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		file := filepath.Join(dir, e.Name(), HostsFile)
		data, err := os.ReadFile(file)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read %s: %w", file, err)
		}
		cfg, err := ParseHostConfig(e.Name(), file, data)
		if err != nil {
			return nil, err
		}
		h.hosts[e.Name()] = cfg
	}
	return h, nil
}

// Set installs cfg as the configuration of host (for configurations that do
// not come from files).
func (h *Hosts) Set(host string, cfg *HostConfig) {
	if h.hosts == nil {
		h.hosts = map[string]*HostConfig{}
	}
	h.hosts[host] = cfg
}

// Configured lists the hosts with a configuration, sorted.
func (h *Hosts) Configured() []string {
	if h == nil {
		return nil
	}
	var out []string
	for k := range h.hosts {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Endpoints returns where host's content is looked for: its mirrors in
// order, then its origin.
func (h *Hosts) Endpoints(host string) []Endpoint {
	if h != nil {
		if cfg, ok := h.hosts[host]; ok {
			return append(append([]Endpoint(nil), cfg.Mirrors...), cfg.Server)
		}
	}
	return []Endpoint{defaultOrigin(host)}
}

func defaultOrigin(host string) Endpoint {
	if host == dockerHub {
		host = dockerHubEndpoint
	}
	return Endpoint{URL: &url.URL{Scheme: "https", Host: host}, Capabilities: []string{CapabilityPull, CapabilityResolve, CapabilityPush}}
}

type hostsTOML struct {
	Server       string               `toml:"server"`
	Capabilities []string             `toml:"capabilities"`
	CA           string               `toml:"ca"`
	SkipVerify   bool                 `toml:"skip_verify"`
	Host         map[string]hostEntry `toml:"host"`
}

type hostEntry struct {
	Capabilities []string `toml:"capabilities"`
	CA           string   `toml:"ca"`
	SkipVerify   bool     `toml:"skip_verify"`
}

// ParseHostConfig parses the hosts.toml data of host read from file.
func ParseHostConfig(host, file string, data []byte) (*HostConfig, error) {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("%s: %s: %s: %w", file, key, fmt.Sprintf(format, a...), errdefs.ErrInvalidArgument)
	}
	var raw hostsTOML
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %w", file, err, errdefs.ErrInvalidArgument)
	}
	if und := md.Undecoded(); len(und) > 0 {
		return nil, bad(und[0].String(), "unknown key")
	}
	cfg := &HostConfig{File: file, Server: defaultOrigin(host)}
	if raw.Server != "" {
		u, err := parseEndpointURL(raw.Server)
		if err != nil {
			return nil, bad("server", "%v", err)
		}
		cfg.Server.URL = u
	}
	if md.IsDefined("capabilities") {
		caps, err := checkCapabilities(raw.Capabilities)
		if err != nil {
			return nil, bad("capabilities", "%v", err)
		}
		cfg.Server.Capabilities = caps
	}
	if raw.CA != "" {
		if err := checkCA(raw.CA); err != nil {
			return nil, bad("ca", "%v", err)
		}
		cfg.Server.CAFile = raw.CA
	}
	cfg.Server.SkipVerify = raw.SkipVerify
	// Mirrors in file order: the map loses it, the metadata keeps it.
	var order []string
	seen := map[string]bool{}
	for _, k := range md.Keys() {
		if len(k) >= 2 && k[0] == "host" && !seen[k[1]] {
			seen[k[1]] = true
			order = append(order, k[1])
		}
	}
	for _, name := range order {
		entry := raw.Host[name]
		key := fmt.Sprintf("host.%q", name)
		u, err := parseEndpointURL(name)
		if err != nil {
			return nil, bad(key, "%v", err)
		}
		ep := Endpoint{URL: u, Capabilities: []string{CapabilityPull, CapabilityResolve}, SkipVerify: entry.SkipVerify, Mirror: true}
		if md.IsDefined("host", name, "capabilities") {
			caps, err := checkCapabilities(entry.Capabilities)
			if err != nil {
				return nil, bad(key+".capabilities", "%v", err)
			}
			ep.Capabilities = caps
		}
		if entry.CA != "" {
			if err := checkCA(entry.CA); err != nil {
				return nil, bad(key+".ca", "%v", err)
			}
			ep.CAFile = entry.CA
		}
		cfg.Mirrors = append(cfg.Mirrors, ep)
	}
	return cfg, nil
}

// parseEndpointURL accepts scheme://host[:port] with an optional /v2 path.
func parseEndpointURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", s)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q: no host", s)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: user info, query and fragment are not supported", s)
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && p != "/v2" {
		return nil, fmt.Errorf("%q: path %q not supported (only /v2)", s, u.Path)
	}
	return &url.URL{Scheme: u.Scheme, Host: u.Host}, nil
}

func checkCapabilities(caps []string) ([]string, error) {
	if len(caps) == 0 {
		return nil, errors.New("empty: the endpoint could do nothing")
	}
	for _, c := range caps {
		switch c {
		case CapabilityPull, CapabilityResolve, CapabilityPush:
		default:
			return nil, fmt.Errorf("%q unknown (pull, resolve, push)", c)
		}
	}
	return caps, nil
}

func checkCA(path string) error {
	if !filepath.IsAbs(path) {
		return fmt.Errorf("%q: not an absolute path", path)
	}
	if _, err := os.Stat(path); err != nil {
		return err
	}
	return nil
}
