// Package spec reads a bundle's config.json and checks it against
// runtime-spec v1.3.0 for Linux before anything is created: Load parses and
// validates, Validate checks an already parsed spec field by field and
// returns one error naming the field at fault, Example and ToRootless build
// the config that `gantry-oci spec` writes, and Features describes what
// gantry-oci implements for `gantry-oci features`. The package performs no
// syscalls beyond reading files and stat'ing paths; kernel mechanics live in
// the internal/oci/linux packages, whose parsers it uses as validators.
package spec
