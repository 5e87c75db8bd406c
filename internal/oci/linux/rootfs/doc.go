// Package rootfs builds a container's filesystem view inside its new mount
// namespace from the runtime-spec config: it mounts every spec.Mounts entry
// with destinations resolved safely inside the root filesystem, creates the
// device nodes and /dev symlinks, switches the root with pivot_root (or
// MS_MOVE and chroot), and finally applies masked paths, read-only paths,
// a read-only root and the root mount propagation. The container init calls
// Prepare, then PivotRoot, then Finalize, in that order. OpenInRoot and
// MkdirAllInRoot are the same in-root resolution for the init's other
// paths (a missing process.cwd, created after the pivot).
package rootfs
