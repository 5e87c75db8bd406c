// Package console creates the pseudo-terminal of a container whose
// process.terminal is true, hands its master to the caller of the runtime
// over the --console-socket (SCM_RIGHTS, as runc does) and makes its slave
// the controlling terminal and standard streams of the container process.
package console
