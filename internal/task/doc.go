// Package task runs containers through their shims: Create launches one
// gantry-shim per container (detached, so it outlives gantryd), every
// other verb is a call on the shim's socket, and Restore finds the shims
// of a previous gantryd at start-up, reconnects to the live ones and
// cleans up after the dead ones. A watcher per task waits for the init's
// exit and publishes it. A shim that dies, noticed by its watcher (the
// Wait's connection closes), by a call, or at Restore, is cleaned up
// along one path (reap): the runtime's delete --force kills what is left
// of the container and removes its state, and the exit (unknown, or that
// of the shim's durable record) goes to Config.Exited before the task is
// forgotten.
package task
