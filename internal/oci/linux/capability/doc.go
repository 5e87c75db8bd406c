// Package capability maps capability names to numbers and applies the
// runtime-spec process.capabilities sets (bounding, effective, permitted,
// inheritable, ambient) to the calling thread as the last step before the
// container process is executed. Capability sets are per thread in Linux, so
// the caller must have its OS thread locked and execve from that thread.
package capability
