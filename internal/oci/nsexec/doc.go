// Package nsexec holds the small C bootstrap that runs before the Go runtime
// starts when gantry-oci is executed as a container's bootstrap process, and
// the Go side of its protocol: the bootstrap message (which namespaces to
// join and create, time offsets, whether to fork into a new PID namespace,
// and for exec's fast path an Exec plan) and the replies (user-namespace map
// requests, the init's pid, errors). With an Exec plan the final process
// does not return to Go: execproc.c applies the process attributes and
// executes the process. Importing the package links the constructor in;
// only cmd/gantry-oci and its tests may import it. The protocol is
// documented in nsexec.c, the exec section in execproc.c.
package nsexec
