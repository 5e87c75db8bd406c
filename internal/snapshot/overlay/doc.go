// Package overlay is the overlayfs snapshotter. Every snapshot owns a
// directory <root>/snapshots/<id> named by a short numeric id: a committed
// snapshot's fs/ holds one layer's changes (whiteouts as 0:0 character
// devices, opaque directories marked with trusted.overlay.opaque); an
// active snapshot's fs/ and work/ are the upper and work directories of an
// overlay mount whose lower directories are the fs/ directories of its
// parent chain. Metadata lives in <root>/metadata.db (internal/snapshot/storage).
// CommitOnto commits a snapshot prepared with no parent onto a parent (its
// fs/ written in overlay form), so that layers can be extracted in parallel.
//
// Lower-directory limit: mount(2) copies at most one page (4096 bytes) of
// options. With absolute paths each layer costs len(root)+len("/snapshots/")
// plus the id and "/fs:", about 60 bytes under /var/lib/gantry, so roughly
// 60 layers fit; longer option strings are mounted with the directories
// relative to <root>/snapshots from a thread with its own working directory
// (see snapshot.MountAll), where a layer costs about 7 bytes, so over 500
// layers fit and overlayfs' own limit of 500 lower layers is reached first.
package overlay
