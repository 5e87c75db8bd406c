// Package services implements gantryd's gRPC services (api/gantry/v1) over
// the domain packages. Each service is a thin translation layer: it reads
// the namespace from the call's metadata, converts API messages to domain
// values and back, and leaves every decision to the domain; errors become
// gRPC codes only here, through errgrpc, in the interceptors that Register
// installs. The image and maintenance operations are reached through the
// small Images and Maintenance interfaces below, which gantryd's wiring
// (internal/daemon) satisfies with internal/image and internal/metadata.
package services
