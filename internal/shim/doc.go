// Package shim is gantry-shim: the small per-container process that is its
// container's parent (a child subreaper), outlives gantryd, runs the
// runtime through ociclient, holds the container's stdio and writes it to a
// rotating JSON-lines log, records every exit status durably before it
// reports it, and answers the gantry.shim.v1 protocol (api/shim/v1) on a
// unix socket in its state directory. It also holds what gantryd needs to
// use shims: Launch to start one, Client to talk to one, and Discover and
// Cleanup to find them again after a restart. docs/design/shim.md has the
// design.
package shim
