// Command probe is a small static program that end-to-end tests place at
// /probe in a container's rootfs. `probe report` prints one JSON object
// (see package report) describing what the process sees: ids, capabilities,
// rlimits, namespaces, mounts, fds and more. Other subcommands exercise one
// thing each (exit, sleep, cat, write, stat, ls, try-open, signals, syscall)
// and print deterministic one-line results. Build it with CGO_ENABLED=0; it
// uses only the standard library and golang.org/x/sys.
package main
