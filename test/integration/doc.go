// Package integration holds the end-to-end tests of gantry-oci: each test
// runs a runc-compatible runtime binary (GANTRY_RUNTIME, or gantry-oci built
// from ./cmd/gantry-oci) as root against bundles from test/bundle whose
// /probe reports what the container sees. Every test uses its own --root
// and fails when a container leaves a state entry, cgroup, process or mount
// behind. The suite is known good against runc:
//
//	sudo GANTRY_RUNTIME=/usr/sbin/runc go test ./test/integration/
package integration
