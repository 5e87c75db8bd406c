// Package native is the copying snapshotter that works on any filesystem:
// every snapshot owns a complete tree in <root>/snapshots/<id>/fs. Prepare
// copies the parent's tree (owners, modes, xattrs, hardlinks, device nodes
// and times kept) and returns a bind mount of the copy; a view binds its
// parent's tree read-only. Layers are applied with whiteouts as deletions.
// Metadata lives in <root>/metadata.db (internal/snapshot/storage).
package native
