package container

import (
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/gantry-project/gantry/internal/oci/linux/cgroup"
	"github.com/gantry-project/gantry/internal/oci/state"
)

// State is what "state" prints: the runtime-spec state plus the fields
// runc adds that its clients read (rootfs, created, owner).
type State struct {
	specs.State
	Rootfs  string    `json:"rootfs"`
	Created time.Time `json:"created"`
	Owner   string    `json:"owner"`
}

func (r *Runtime) status(c *state.Container) string {
	frozen := false
	if len(c.CgroupPaths) > 0 {
		if cg, err := cgroup.Load(c.CgroupPaths); err == nil {
			if s, err := cg.State(); err == nil && s == "frozen" {
				frozen = true
			}
		}
	}
	return r.Store.Status(c, frozen)
}

// State returns the state of id.
func (r *Runtime) State(id string) (*State, error) {
	c, err := r.Store.Load(id)
	if err != nil {
		return nil, err
	}
	return r.stateOf(c), nil
}

func (r *Runtime) stateOf(c *state.Container) *State {
	st := r.status(c)
	pid := c.Pid
	if st == state.Stopped {
		pid = 0
	}
	return &State{
		State: specs.State{
			Version:     specs.Version,
			ID:          c.ID,
			Status:      specs.ContainerState(st),
			Pid:         pid,
			Bundle:      c.Bundle,
			Annotations: c.Annotations,
		},
		Rootfs:  c.Rootfs,
		Created: c.Created,
		Owner:   c.Owner,
	}
}

// List returns the state of every container under --root.
func (r *Runtime) List() ([]*State, error) {
	ids, err := r.Store.List()
	if err != nil {
		return nil, err
	}
	out := make([]*State, 0, len(ids))
	for _, id := range ids {
		c, err := r.Store.Load(id)
		if err != nil {
			continue
		}
		out = append(out, r.stateOf(c))
	}
	return out, nil
}
