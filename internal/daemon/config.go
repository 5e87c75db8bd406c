package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gantry-project/gantry/internal/errdefs"
)

// Defaults of the config.
const (
	DefaultConfigPath        = "/etc/gantry/gantryd.toml"
	DefaultRoot              = "/var/lib/gantry"
	DefaultState             = "/run/gantry"
	DefaultAddress           = "/run/gantry/gantryd.sock"
	DefaultRegistryConfigDir = "/etc/gantry"
	DefaultMaxDownloads      = 3
)

// Snapshotter names.
const (
	SnapshotterOverlay = "overlay"
	SnapshotterNative  = "native"
)

// Config is gantryd's configuration, read from a TOML file; every key is
// optional. Example:
//
//	root = "/var/lib/gantry"
//	state = "/run/gantry"
//	address = "/run/gantry/gantryd.sock"
//	log_level = "info"
//	snapshotter = "overlay"          # or "native"
//	snapshotter_fallback = false     # use native when overlayfs is unusable
//	runtime = ""                     # default: gantry-oci next to gantryd
//	init = ""                        # gantry-init for run --init; default: next to gantryd
//	runtime_timeout = "30s"          # each runtime call of a shim
//	shim_timeout = "100s"            # each call of gantryd to a shim
//	cgroup_parent = "/gantry"        # containers get <parent>/<ns>-<id>
//	rm_rootfs_volatile = false       # run --rm: overlay "volatile" rw layer (no sync at unmount)
//
//	[registry]
//	config_dir = "/etc/gantry"       # hosts.d/<host>/hosts.toml below it
//	insecure = ["localhost:5000"]    # plain HTTP allowed for these hosts
//	ca_file = ""                     # extra CA for registry TLS
//	max_concurrent_downloads = 3
type Config struct {
	Root                string   `toml:"root"`
	State               string   `toml:"state"`
	Address             string   `toml:"address"`
	LogLevel            string   `toml:"log_level"`
	Snapshotter         string   `toml:"snapshotter"`
	SnapshotterFallback bool     `toml:"snapshotter_fallback"`
	Registry            Registry `toml:"registry"`
	// Runtime is the default runc-compatible binary (a path, or a name in
	// PATH); empty: gantry-oci next to gantryd, else in PATH.
	Runtime string `toml:"runtime"`
	// Shim is gantry-shim; empty: next to gantryd, else in PATH.
	Shim string `toml:"shim"`
	// Init is gantry-init, bind-mounted into containers run with --init;
	// empty: next to gantryd, else in PATH. Looked up at each such create.
	Init string `toml:"init"`
	// RuntimeTimeout bounds each runtime call a shim makes (a Go
	// duration, "30s"); empty: the shim's default (30 s).
	RuntimeTimeout string `toml:"runtime_timeout"`
	// ShimTimeout bounds each call gantryd makes to a shim that is not a
	// wait; empty: three runtime timeouts and 10 s.
	ShimTimeout string `toml:"shim_timeout"`
	// CgroupParent is the cgroup under which every container gets
	// <namespace>-<id>; empty: DefaultCgroupParent.
	CgroupParent string `toml:"cgroup_parent"`
	// RmRootfsVolatile mounts the writable layer of `run --rm` containers
	// with overlayfs's volatile option (bundle.CreateVolatile): no sync of
	// the whole filesystem when it is unmounted. Off by default: on ext4
	// without a journal it made every run slower (docs/performance.md).
	RmRootfsVolatile bool `toml:"rm_rootfs_volatile"`
}

// DefaultCgroupParent is the cgroup parent of containers.
const DefaultCgroupParent = "/gantry"

// Timeouts returns the parsed runtime_timeout and shim_timeout (0 when
// unset).
func (c *Config) Timeouts() (runtime, shim time.Duration, err error) {
	for _, t := range []struct {
		key   string
		value string
		dst   *time.Duration
	}{{"runtime_timeout", c.RuntimeTimeout, &runtime}, {"shim_timeout", c.ShimTimeout, &shim}} {
		if t.value == "" {
			continue
		}
		d, err := time.ParseDuration(t.value)
		if err != nil || d <= 0 {
			return 0, 0, fmt.Errorf("%s %q: want a positive duration such as \"30s\": %w", t.key, t.value, errdefs.ErrInvalidArgument)
		}
		*t.dst = d
	}
	return runtime, shim, nil
}

// Registry configures pulls.
type Registry struct {
	ConfigDir              string   `toml:"config_dir"`
	Insecure               []string `toml:"insecure"`
	CAFile                 string   `toml:"ca_file"`
	MaxConcurrentDownloads int      `toml:"max_concurrent_downloads"`
}

// DefaultConfig returns the config used when no file is given.
func DefaultConfig() Config {
	return Config{
		Root:        DefaultRoot,
		State:       DefaultState,
		Address:     DefaultAddress,
		LogLevel:    "info",
		Snapshotter: SnapshotterOverlay,
		Registry: Registry{
			ConfigDir:              DefaultRegistryConfigDir,
			MaxConcurrentDownloads: DefaultMaxDownloads,
		},
	}
}

// LoadConfig reads path over the defaults. A missing file is an error
// unless missingOK; an unknown key is always an error that names it, so a
// typo is never silently ignored.
func LoadConfig(path string, missingOK bool) (Config, error) {
	cfg := DefaultConfig()
	data, err := os.ReadFile(path)
	if err != nil {
		if missingOK && errors.Is(err, fs.ErrNotExist) {
			return cfg, nil
		}
		return Config{}, fmt.Errorf("read config %s: %w", path, err)
	}
	md, err := toml.Decode(string(data), &cfg)
	if err != nil {
		return Config{}, fmt.Errorf("config %s: %v: %w", path, err, errdefs.ErrInvalidArgument)
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, 0, len(undecoded))
		for _, k := range undecoded {
			keys = append(keys, fmt.Sprintf("%q", k.String()))
		}
		return Config{}, fmt.Errorf("config %s: unknown key %s: %w", path, strings.Join(keys, ", "), errdefs.ErrInvalidArgument)
	}
	return cfg, nil
}

// Validate checks the config and makes its paths absolute.
func (c *Config) Validate() error {
	for _, p := range []struct {
		field string
		value *string
	}{{"root", &c.Root}, {"state", &c.State}, {"address", &c.Address}, {"registry.config_dir", &c.Registry.ConfigDir}} {
		*p.value = strings.TrimPrefix(*p.value, "unix://")
		if *p.value == "" {
			return fmt.Errorf("%s: empty: %w", p.field, errdefs.ErrInvalidArgument)
		}
		abs, err := filepath.Abs(*p.value)
		if err != nil {
			return fmt.Errorf("%s %q: %w", p.field, *p.value, err)
		}
		*p.value = abs
	}
	if c.Root == c.State {
		return fmt.Errorf("root and state: both %q, want two directories: %w", c.Root, errdefs.ErrInvalidArgument)
	}
	switch c.Snapshotter {
	case SnapshotterOverlay, SnapshotterNative:
	default:
		return fmt.Errorf("snapshotter %q: want %q or %q: %w", c.Snapshotter, SnapshotterOverlay, SnapshotterNative, errdefs.ErrInvalidArgument)
	}
	if _, err := ParseLogLevel(c.LogLevel); err != nil {
		return err
	}
	if _, _, err := c.Timeouts(); err != nil {
		return err
	}
	if c.CgroupParent == "" {
		c.CgroupParent = DefaultCgroupParent
	}
	if !strings.HasPrefix(c.CgroupParent, "/") || filepath.Clean(c.CgroupParent) != c.CgroupParent || c.CgroupParent == "/" {
		return fmt.Errorf("cgroup_parent %q: want a clean absolute cgroup path such as \"/gantry\": %w", c.CgroupParent, errdefs.ErrInvalidArgument)
	}
	if n := c.Registry.MaxConcurrentDownloads; n < 1 || n > 64 {
		return fmt.Errorf("registry.max_concurrent_downloads %d: want 1 to 64: %w", n, errdefs.ErrInvalidArgument)
	}
	for i, h := range c.Registry.Insecure {
		if h == "" || strings.ContainsAny(h, "/ ") {
			return fmt.Errorf("registry.insecure[%d] %q: want host or host:port: %w", i, h, errdefs.ErrInvalidArgument)
		}
	}
	if c.Registry.CAFile != "" {
		if _, err := os.Stat(c.Registry.CAFile); err != nil {
			return fmt.Errorf("registry.ca_file: %w", err)
		}
	}
	return nil
}

var logLevels = []string{"debug", "info", "warn", "error"}

// ParseLogLevel parses "debug", "info", "warn" or "error".
func ParseLogLevel(s string) (slog.Level, error) {
	if !slices.Contains(logLevels, s) {
		return 0, fmt.Errorf("log_level %q: want one of %s: %w", s, strings.Join(logLevels, ", "), errdefs.ErrInvalidArgument)
	}
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}
