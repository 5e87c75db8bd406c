package container

import (
	"fmt"

	"github.com/gantry-project/gantry/internal/errdefs"
	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// Pause freezes every process of a running container (v1 freezer or v2
// cgroup.freeze). Pausing a container that is not running is an error that
// changes nothing.
func (r *Runtime) Pause(id string) error {
	return r.freeze(id, true)
}

// Resume thaws a paused container. Resuming a container that is not paused
// is an error that changes nothing.
func (r *Runtime) Resume(id string) error {
	return r.freeze(id, false)
}

func (r *Runtime) freeze(id string, freeze bool) error {
	verb, want := "resume", state.Paused
	if freeze {
		verb, want = "pause", state.Running
	}
	if err := state.ValidateID(id); err != nil {
		return err
	}
	unlock, err := r.Store.Lock(id)
	if err != nil {
		return err
	}
	defer unlock()
	c, err := r.Store.Load(id)
	if err != nil {
		return err
	}
	if st := r.status(c); st != want {
		return fmt.Errorf("%s container %q: it is %s, not %s: %w", verb, id, st, want, errdefs.ErrFailedPrecondition)
	}
	cg, err := containerCgroup(c)
	if err != nil {
		return fmt.Errorf("%s container %q: %w", verb, id, err)
	}
	if freeze {
		err = cg.Freeze()
	} else {
		err = cg.Thaw()
	}
	if err != nil {
		return fmt.Errorf("%s container %q: %w", verb, id, err)
	}
	r.Log.Debug(verb, "id", id)
	return nil
}

// containerCgroup reopens the cgroup recorded in c's state.
func containerCgroup(c *state.Container) (cgroup.Manager, error) {
	if len(c.CgroupPaths) == 0 {
		return nil, fmt.Errorf("container has no cgroup (created rootless without cgroup access): %w", errdefs.ErrFailedPrecondition)
	}
	return cgroup.Load(c.CgroupPaths)
}
