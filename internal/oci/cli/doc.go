// Package cli is gantry-oci's command line: runc-compatible commands and
// flags, one file a verb, so that containerd's runc shim, conmon (podman,
// CRI-O) and the OCI runtime-tools can drive gantry-oci in runc's place.
package cli
