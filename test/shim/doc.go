// Package shim holds the end-to-end tests of gantry-shim: they build
// gantry-shim (and gantry-oci unless GANTRY_RUNTIME names a runtime), start
// real shims for test/bundle bundles and check logs, durable exits,
// survival of the shim's parent, exec, kill -9 of the shim, Wait, Delete
// leaving nothing, and a hung runtime timing out. They need root.
package shim
