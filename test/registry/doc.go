// Package registry is the registry test harness shared by every image test:
// Start runs the Debian docker-registry server (github.com/docker/distribution)
// on 127.0.0.1 with a random port, a temporary storage directory and a
// generated config.yml, optionally behind htpasswd basic auth or TLS with a CA
// made by the test; the builders make images offline (busybox-static based, a
// multi-arch index, zstd, many layers, whiteouts, hardlinks, device nodes, a
// large incompressible layer) as OCI or Docker schema 2 manifests, configs
// and indexes, and Pusher pushes them with the OCI distribution API.
package registry
