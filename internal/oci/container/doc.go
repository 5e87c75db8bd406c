// Package container implements gantry-oci's lifecycle verbs, one file a
// verb: create (the parent side of a new container), init (the container
// side, run inside its namespaces), start, run, kill, delete, state and
// list. The processes and the messages between them are described in
// docs/design/runtime.md.
package container
