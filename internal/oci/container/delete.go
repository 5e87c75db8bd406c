package container

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/hook"
	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// Delete removes a stopped container: its cgroup, then the poststop hooks,
// then its state. With force a container in any state is killed first.
// Without force, deleting a container that is not stopped is an error and
// changes nothing, as runtime-spec runtime.md says.
func (r *Runtime) Delete(ctx context.Context, id string, force bool) error {
	return r.delete(ctx, id, force, nil)
}

// delete is Delete; run passes the container it created as c, so that
// the state is not read back (a state removed meanwhile still fails the
// lock).
func (r *Runtime) delete(ctx context.Context, id string, force bool, c *state.Container) error {
	if err := state.ValidateID(id); err != nil {
		return err
	}
	unlock, err := r.Store.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	if c == nil {
		if c, err = r.Store.Load(id); err != nil {
			if errdefs.IsNotFound(err) {
				// a create that died before writing state.json leaves
				// only the directory: nothing runs, remove it.
				r.Store.Remove(id)
			}
			return err
		}
	}
	var cg cgroup.Manager
	if len(c.CgroupPaths) > 0 {
		if m, err := cgroup.Load(c.CgroupPaths); err == nil {
			cg = m
		}
	}
	st := r.status(c)
	if st != state.Stopped {
		if !force {
			return fmt.Errorf("container %q is %s, not stopped: use --force: %w", id, st, errdefs.ErrFailedPrecondition)
		}
		if st == state.Paused && cg != nil {
			defer cg.Thaw()
		}
		signalInit(c, unix.SIGKILL)
		if cg != nil {
			for _, p := range mustPids(cg) {
				unix.Kill(p, unix.SIGKILL)
			}
			if st == state.Paused {
				cg.Thaw()
			}
		}
		if !waitGone(c.Pid, c.PidStartTime, 10*time.Second) {
			return fmt.Errorf("container %q: init %d did not die after SIGKILL", id, c.Pid)
		}
	}
	if cg != nil {
		killCgroup(cg)
		if err := cg.Destroy(); err != nil {
			return fmt.Errorf("delete container %q: remove cgroup: %w", id, err)
		}
	}
	if c.Spec != nil && c.Spec.Hooks != nil {
		hs := hookState(c.ID, c.Spec, c.Bundle, 0, state.Stopped)
		for i, h := range c.Spec.Hooks.Poststop {
			if err := hook.Run(ctx, "poststop", i, h, hs); err != nil {
				r.Log.Warn("poststop hook failed", "id", id, "error", err)
			}
		}
	}
	return r.Store.Remove(id)
}

func mustPids(cg cgroup.Manager) []int {
	p, _ := cg.Pids()
	return p
}
