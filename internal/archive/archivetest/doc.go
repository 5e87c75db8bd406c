// Package archivetest describes unpacked trees for tests of internal/archive
// and internal/unpack: two trees that must be the same (a layer applied
// sequentially and in parallel) compare as two sorted lists of lines. It
// also writes the tar streams Go's archive/tar cannot (sparse files).
package archivetest
