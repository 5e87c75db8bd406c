// Package content is Gantry's content-addressable blob store. Blobs live at
// <root>/blobs/<algorithm>/<hex>, so a blob's file name is its digest and the
// layout can be read by hand. Every write goes to an ingest directory
// (<root>/ingest/<hash of ref>/) and becomes visible only after its size and
// digest have been checked, by an atomic rename followed by an fsync of the
// blob directory. An ingest that is closed without being committed stays on
// disk and a later Writer with the same ref resumes it at Offset(); Fetch
// makes concurrent callers of one digest share a single download.
package content
