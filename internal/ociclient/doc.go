// Package ociclient runs a runc-compatible OCI runtime binary (gantry-oci,
// runc, crun, ...) as a child process: one method per runtime verb, each
// bounded by a timeout that kills the runtime's process group when it hangs,
// each passing --root and a JSON --log so that a failure comes back as an
// error carrying the runtime's own last "error" message. It is the only way
// the shim reaches the runtime: nothing here links the runtime's code. A
// caller that reaps children itself (a subreaper) supplies a Monitor so that
// the exit status of the runtime process is not lost to its reaper.
package ociclient
