// Package bundle builds OCI bundles for end-to-end tests of an OCI runtime.
// Rootfs returns a template root filesystem built once per test process
// under the repository's _build/rootfs (busybox-static with its applet links,
// the probe from test/probe at /probe, a dynamic busybox with its libraries
// under /dyn and /lib, users and groups in /etc); New copies that template
// into a temporary bundle with a config.json close to `runc spec`, running
// `/probe report`. Building needs no root; running the bundles does.
package bundle
