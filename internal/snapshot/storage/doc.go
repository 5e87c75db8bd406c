// Package storage keeps the metadata that the snapshotters in
// internal/snapshot share: one bbolt file recording, for every snapshot, its
// key, parent, kind, creation time, labels and the short numeric id that
// names its directory. It also measures a directory's disk usage. The
// snapshotters own the directories; this package owns only the records.
package storage
