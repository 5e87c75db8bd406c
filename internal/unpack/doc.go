// Package unpack turns an image's layers, stored as blobs in internal/content,
// into committed snapshots named by chain ID. Each missing layer is prepared
// on its parent's snapshot, decompressed, digested and applied with
// internal/archive straight into the snapshot's directory (an overlay upper
// directory with overlay whiteouts, or a native copy with whiteouts as
// deletions, without mounting), checked against config.rootfs.diff_ids and
// committed; layers that already exist are skipped. With a snapshotter that
// can commit a layer onto its parent after writing it
// (snapshot.ParentCommitter: overlay), the layers are extracted at once
// (archive.ApplyDetached, at most GOMAXPROCS but at least 2 at a time), then
// fixed up and committed in order (parallel.go); the native snapshotter,
// whose snapshots are full copies, applies them one after the other.
// UnpackFrom reads the blobs through a BlobOpener, which may wait for each
// blob to be downloaded (a pull unpacks while it downloads): a layer's blob
// is opened before its snapshot is prepared.
package unpack
