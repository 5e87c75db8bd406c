// Package specgen turns an image's config and the user's options into an
// OCI runtime spec (config.json) with docker-like defaults: private pid,
// ipc, uts, mount, network and cgroup namespaces, the standard /proc, /dev
// and /sys mounts, masked and read-only kernel paths, docker's default
// capability set, RLIMIT_NOFILE 1024:1024 and a default seccomp allow-list.
// The user (name, uid, uid:gid, name:group) is resolved from the image's
// /etc/passwd and /etc/group through a RootfsLookup. The package only builds
// data; it has no side effects and imports nothing of the runtime.
package specgen
