// Package seccomp turns the runtime-spec linux.seccomp section into a
// seccomp BPF filter with libseccomp and installs it in the calling process,
// which is the container init just before it execs the user's program.
// Validate checks a profile without touching the kernel; Load builds and
// installs the filter on every thread and returns the user-notification fd
// when a rule uses SCMP_ACT_NOTIFY; SendNotifyFd hands that fd to the seccomp
// agent listening on listenerPath; the Supported* functions feed the
// features document. Load never sets no_new_privs: the caller decides.
package seccomp
