// Package snapshot defines the Snapshotter interface that layered-filesystem
// backends (internal/snapshot/overlay, internal/snapshot/native) implement,
// in containerd's vocabulary: committed snapshots are read-only and named by
// the chain ID of the layers below them, Prepare makes a writable active
// snapshot on a parent, Commit turns it into a committed one and View makes a
// read-only one. MountAll and UnmountAll turn the returned mounts into real
// mounts on a target directory.
package snapshot
