package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"google.golang.org/grpc"

	"github.com/gantry-project/gantry/internal/content"
	"github.com/gantry-project/gantry/internal/events"
	"github.com/gantry-project/gantry/internal/metadata"
	"github.com/gantry-project/gantry/internal/remote"
	"github.com/gantry-project/gantry/internal/services"
	"github.com/gantry-project/gantry/internal/snapshot"
	"github.com/gantry-project/gantry/internal/snapshot/native"
	"github.com/gantry-project/gantry/internal/snapshot/overlay"
)

// Version is gantryd's version, set at build time with
// -ldflags "-X github.com/gantry-project/gantry/internal/daemon.Version=...".
var Version = "dev"

// shutdownTimeout bounds the graceful stop: calls still running then are
// cancelled.
const shutdownTimeout = 10 * time.Second

// Options are gantryd's command-line flags. Empty fields leave the config
// file's value (or the default) in place.
type Options struct {
	// ConfigPath is the TOML config; "" reads DefaultConfigPath if it exists.
	ConfigPath string
	Address    string
	Root       string
	State      string
	LogLevel   string
}

// Daemon is a running gantryd: its stores are open and its socket listens.
// Run serves until the context ends; Close releases everything.
type Daemon struct {
	cfg    Config
	logger *slog.Logger

	lock     *os.File
	cs       *content.Store
	db       *metadata.DB
	sn       snapshot.Snapshotter
	images   imageStore
	bus      *events.Bus
	ctrs     *containers
	listener net.Listener
	server   *grpc.Server

	closers []func() error // in the order to close
}

// Config returns the effective configuration.
func (d *Daemon) Config() Config { return d.cfg }

// ResolveConfig reads the config file named by opts (or the default one,
// if present) and applies the flags over it, then validates the result.
func ResolveConfig(opts Options) (Config, error) {
	path, missingOK := opts.ConfigPath, false
	if path == "" {
		path, missingOK = DefaultConfigPath, true
	}
	cfg, err := LoadConfig(path, missingOK)
	if err != nil {
		return Config{}, err
	}
	for _, o := range []struct {
		flag string
		dst  *string
	}{{opts.Address, &cfg.Address}, {opts.Root, &cfg.Root}, {opts.State, &cfg.State}, {opts.LogLevel, &cfg.LogLevel}} {
		if o.flag != "" {
			*o.dst = o.flag
		}
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// New reads the config, opens the stores in order (lock, content,
// metadata, snapshotter, registry hosts, images) and listens on the socket.
// Any error (a bad config key, a wrong mirror entry, a root in use) is
// returned after undoing what was done.
func New(opts Options) (*Daemon, error) {
	cfg, err := ResolveConfig(opts)
	if err != nil {
		return nil, err
	}
	level, _ := ParseLogLevel(cfg.LogLevel)
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	d := &Daemon{cfg: cfg, logger: logger}
	if err := d.open(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

func (d *Daemon) open() error {
	cfg := d.cfg
	for _, dir := range []struct {
		path string
		mode os.FileMode
	}{{cfg.Root, 0o711}, {cfg.State, 0o711}} {
		if err := os.MkdirAll(dir.path, dir.mode); err != nil {
			return fmt.Errorf("create %s: %w", dir.path, err)
		}
	}
	lock, err := lockRoot(cfg.Root)
	if err != nil {
		return err
	}
	d.lock = lock
	d.closers = append(d.closers, lock.Close)

	// Registry hosts first: a wrong mirror entry must stop the start-up
	// before anything else is touched.
	hostsDir := filepath.Join(cfg.Registry.ConfigDir, "hosts.d")
	hosts, err := remote.LoadHosts(hostsDir)
	if err != nil {
		return fmt.Errorf("registry hosts: %w", err)
	}

	if d.cs, err = content.NewStore(filepath.Join(cfg.Root, "content")); err != nil {
		return err
	}
	if d.db, err = metadata.Open(filepath.Join(cfg.Root, "metadata.db")); err != nil {
		return err
	}
	d.closers = append(d.closers, d.db.Close)
	name, sn, err := openSnapshotter(cfg, d.logger)
	if err != nil {
		return err
	}
	d.cfg.Snapshotter = name
	d.sn = sn
	d.closers = append(d.closers, sn.Close)

	ropts := remote.Options{
		Hosts:         hosts,
		Insecure:      cfg.Registry.Insecure,
		CAFile:        cfg.Registry.CAFile,
		Credentials:   remote.DockerCredentials(""),
		MaxConcurrent: cfg.Registry.MaxConcurrentDownloads,
	}
	if d.images, err = newImageStore(d.db, d.cs, d.sn, ropts); err != nil {
		return fmt.Errorf("image store: %w", err)
	}

	if err := d.openContainers(); err != nil {
		return err
	}

	l, err := listen(cfg.Address, d.logger)
	if err != nil {
		return err
	}
	d.listener = l
	d.server = grpc.NewServer(services.ServerOptions(d.logger)...)
	services.Register(d.server, services.Backends{
		Images:      d.images,
		Maintenance: &maintenance{db: d.db, cs: d.cs, sn: d.sn, root: cfg.Root, ctrs: d.ctrs},
		Content:     d.cs,
		Snapshotter: d.sn,
		Containers:  d.ctrs,
		Events:      d.bus,
		Logger:      d.logger,
		Info: services.DaemonInfo{
			Version:     Version,
			Root:        cfg.Root,
			State:       cfg.State,
			Address:     cfg.Address,
			Snapshotter: name,
			PID:         os.Getpid(),
		},
	})
	return nil
}

// openSnapshotter is the one place that picks the snapshotter.
func openSnapshotter(cfg Config, logger *slog.Logger) (string, snapshot.Snapshotter, error) {
	root := func(name string) string { return filepath.Join(cfg.Root, "snapshots", name) }
	switch cfg.Snapshotter {
	case SnapshotterOverlay:
		sn, err := overlay.New(root(SnapshotterOverlay))
		if err == nil {
			return SnapshotterOverlay, sn, nil
		}
		if !cfg.SnapshotterFallback {
			return "", nil, fmt.Errorf("snapshotter overlay: %w (set snapshotter = \"native\", or snapshotter_fallback = true, in the config)", err)
		}
		logger.Warn("overlayfs is unusable, falling back to the native snapshotter", "error", err)
		fallthrough
	case SnapshotterNative:
		sn, err := native.New(root(SnapshotterNative))
		if err != nil {
			return "", nil, fmt.Errorf("snapshotter native: %w", err)
		}
		return SnapshotterNative, sn, nil
	default:
		return "", nil, fmt.Errorf("snapshotter %q: unknown", cfg.Snapshotter)
	}
}

// Run serves the API until ctx ends, then stops gracefully: new calls are
// refused, running ones get shutdownTimeout to finish, and everything is
// closed.
func (d *Daemon) Run(ctx context.Context) error {
	d.logger.Info("gantryd started", "version", Version, "address", d.cfg.Address, "root", d.cfg.Root,
		"state", d.cfg.State, "snapshotter", d.cfg.Snapshotter, "pid", os.Getpid())
	serveErr := make(chan error, 1)
	go func() { serveErr <- d.server.Serve(d.listener) }()
	memCtx, stopMem := context.WithCancel(ctx)
	defer stopMem()
	go tuneMemoryLimit(memCtx)

	var err error
	select {
	case <-ctx.Done():
		d.logger.Info("shutting down", "cause", context.Cause(ctx))
	case err = <-serveErr:
		err = fmt.Errorf("serve on %s: %w", d.cfg.Address, err)
	}
	stopWithin(d.logger, "calls still running after the shutdown timeout; cancelling them", d.server.GracefulStop, d.server.Stop)
	if cerr := d.Close(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// stopWithin runs wait and gives it shutdownTimeout to return; then it
// logs msg, calls force and waits for wait to return.
func stopWithin(logger *slog.Logger, msg string, wait, force func()) {
	done := make(chan struct{})
	go func() {
		wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		logger.Warn(msg, "timeout", shutdownTimeout)
		force()
		<-done
	}
}

// Close stops the server if it runs, removes the socket and closes the
// stores and the lock, in the reverse order of opening. It is safe to call
// more than once.
func (d *Daemon) Close() error {
	var errs []error
	if d.server != nil {
		d.server.Stop()
		d.server = nil
	}
	if d.listener != nil {
		d.listener.Close() // also removes the socket file
		d.listener = nil
	}
	if d.images != nil {
		if err := d.images.Close(); err != nil {
			errs = append(errs, fmt.Errorf("close image store: %w", err))
		}
		d.images = nil
	}
	for i := len(d.closers) - 1; i >= 0; i-- {
		if err := d.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	d.closers = nil
	return errors.Join(errs...)
}
