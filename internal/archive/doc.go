// Package archive applies layer tar streams to a directory safely and
// decompresses layer blobs. Apply resolves every entry inside the target
// root (symlinks are followed only as if root were "/", never out of it),
// refuses names and hardlinks that climb out with "..", keeps owners, modes,
// xattrs, times, device nodes and hardlinks, and turns OCI whiteouts either
// into deletions (WhiteoutRemove, for the native snapshotter) or into the
// 0:0 character devices and trusted.overlay.opaque xattrs that overlayfs
// reads (WhiteoutOverlay); whiteouts hide only the lower layers' entries.
// Before writing a file's data, Apply tells ApplyOptions.Charge its size
// (a sparse file's logical size, a file copied up from a lower layer), so
// that the caller can bound what a layer writes. ApplyDetached writes a
// layer in overlay form before its lower layers exist, leaving what needs
// them to Detached.Fix.
// Decompress sniffs gzip, zstd, bzip2 or plain.
package archive
