// Package clients holds end-to-end tests that drive a runc-compatible
// runtime through real container engines: containerd 1.6 (its runc v2 shim,
// through ctr) and podman 4.3 (through conmon). Every test starts its own
// containerd, or runs podman, on a private temporary root, state directory,
// socket and configuration, with an offline busybox image that the test
// process builds (WriteImageArchive) and imports; nothing touches the host's
// default engine directories or the network. The runtime comes from
// GANTRY_RUNTIME (an absolute path), or is gantry-oci built from
// ./cmd/gantry-oci; the suite is known good with runc:
//
//	GANTRY_RUNTIME=$(command -v runc) go test -count=1 -v ./test/clients/
package clients
