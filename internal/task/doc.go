// Package task runs containers through their shims: Create launches one
// gantry-shim per container (detached, so it outlives gantryd), every
// other verb is a call on the shim's socket, and Restore finds the shims
// of a previous gantryd at start-up, reconnects to the live ones and
// cleans up after the dead ones. A watcher per task waits for the init's
// exit and publishes it; a shim that dies leaves its task "stopped" with
// the exit status unknown (or the status of its durable exit record).
package task
