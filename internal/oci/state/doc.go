// Package state keeps gantry-oci's per-container state under --root: one
// directory per container id holding state.json (written atomically), the
// exec fifo that holds a created container's init until "start", and a lock
// file taken with flock for every operation that changes the container.
// Status is derived from the init process (alive, a zombie or gone, checked
// against its recorded start time so a reused pid is not mistaken for it)
// and from the presence of the exec fifo.
package state
