// Package unpack turns an image's layers, stored as blobs in internal/content,
// into committed snapshots named by chain ID. Each missing layer is prepared
// on its parent's snapshot, decompressed, digested and applied with
// internal/archive straight into the snapshot's directory (an overlay upper
// directory with overlay whiteouts, or a native copy with whiteouts as
// deletions, without mounting), checked against config.rootfs.diff_ids and
// committed; layers that already exist are skipped.
package unpack
