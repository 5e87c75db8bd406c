package daemon

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/events"
	"github.com/gantry-project/gantry/internal/task"
)

// Binaries gantryd looks for next to itself, then in PATH.
const (
	defaultRuntimeName = "gantry-oci"
	shimName           = "gantry-shim"
	initName           = "gantry-init"
)

// findBinary returns configured if set (a path or a name in PATH), else
// name next to gantryd's own binary, else name in PATH.
func findBinary(configured, name string) (string, error) {
	if configured != "" {
		p, err := exec.LookPath(configured)
		if err != nil {
			return "", fmt.Errorf("%s %q: %w", name, configured, err)
		}
		return filepath.Abs(p)
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s: not next to gantryd nor in PATH: %w", name, err)
	}
	return filepath.Abs(p)
}

// openContainers opens the event bus and the task manager, reconnects the
// shims of a previous gantryd and builds the container service's backend.
func (d *Daemon) openContainers() error {
	cfg := d.cfg
	// A missing shim or runtime does not stop the start-up (images work
	// without them); running a container then fails with this error.
	var missing error
	shimBin, err := findBinary(cfg.Shim, shimName)
	if err != nil {
		missing = fmt.Errorf("shim: %w: %w", err, errdefs.ErrFailedPrecondition)
		d.logger.Warn("containers cannot run", "error", missing)
	}
	runtime, err := findBinary(cfg.Runtime, defaultRuntimeName)
	if err != nil && missing == nil {
		missing = fmt.Errorf("runtime: %w (set runtime = \"runc\" in the config to use another): %w", err, errdefs.ErrFailedPrecondition)
		d.logger.Warn("containers cannot run", "error", missing)
	}
	if d.bus, err = events.Open(filepath.Join(cfg.Root, "events.db"), 0); err != nil {
		return err
	}
	d.closers = append(d.closers, d.bus.Close)
	for _, dir := range []string{"shims", "bundles", "runtime"} {
		if err := os.MkdirAll(filepath.Join(cfg.State, dir), 0o700); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Join(cfg.State, dir), err)
		}
	}
	publish := func(ns, topic, id string, attrs map[string]string) {
		if _, err := d.bus.Publish(ns, topic, id, attrs); err != nil {
			d.logger.Warn("publish event", "topic", topic, "error", err)
		}
	}
	runtimeTimeout, shimTimeout, err := cfg.Timeouts()
	if err != nil {
		return err
	}
	img, ok := d.images.(*images)
	if !ok {
		return fmt.Errorf("containers: the image store is not internal/image")
	}
	d.ctrs = &containers{
		db: d.db, sn: d.sn, images: img.svc, bus: d.bus, logger: d.logger,
		bundles: filepath.Join(cfg.State, "bundles"), dataRoot: filepath.Join(cfg.Root, "containers"),
		runtime: runtime, missing: missing, cgroupParent: cfg.CgroupParent, rmVolatile: cfg.RmRootfsVolatile, initConfig: cfg.Init,
		shims: filepath.Join(cfg.State, "shims"), runtimeRoot: filepath.Join(cfg.State, "runtime"),
		autoRm: newAutoRemover(),
	}
	d.ctrs.tasks = task.New(task.Config{
		StateRoot:   filepath.Join(cfg.State, "shims"),
		ShimBinary:  shimBin,
		RuntimeRoot: filepath.Join(cfg.State, "runtime"),
		Timeout:     runtimeTimeout,
		CallTimeout: shimTimeout,
		Publish:     publish,
		Exited:      d.ctrs.taskExited,
		Logger:      d.logger,
	})
	// Closed first (closers run in reverse): removals under way finish
	// before the event bus and the metadata close.
	d.closers = append(d.closers, d.ctrs.closeAutoRemove)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return d.ctrs.restore(ctx)
}
