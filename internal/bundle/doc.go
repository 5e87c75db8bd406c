// Package bundle lays out an OCI bundle for a container: the directory
// <state>/bundles/<namespace>/<id>, its config.json and its rootfs, which
// is the container's writable snapshot mounted with snapshot.MountAll. The
// rootfs stays mounted while the container exists (Ensure mounts it again
// after a reboot) and Remove unmounts it and removes the directory.
package bundle
