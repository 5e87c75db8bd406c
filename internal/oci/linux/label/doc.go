// Package label arranges for the container process to be executed under the
// runtime-spec process.apparmorProfile and process.selinuxLabel, by writing
// the exec attributes of the calling thread in /proc/thread-self/attr just
// before execve. Asking for an LSM the kernel does not have is an error of
// kind errdefs.ErrNotImplemented.
package label
