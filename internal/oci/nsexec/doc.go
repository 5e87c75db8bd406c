// Package nsexec holds the small C bootstrap that runs before the Go runtime
// starts when gantry-oci is executed as a container's bootstrap process, and
// the Go side of its protocol: the bootstrap message (which namespaces to
// join and create, time offsets, whether to fork into a new PID namespace)
// and the replies (user-namespace map requests, the init's pid, errors).
// Importing the package links the constructor in; only cmd/gantry-oci and
// its tests may import it. The protocol is documented in nsexec.c.
package nsexec
