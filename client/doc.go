// Package client is the Go client for gantryd. It speaks the gRPC API of
// api/gantry/v1 over gantryd's unix socket, names the namespace of every
// call in the "gantry-namespace" metadata, and turns the daemon's gRPC
// status codes back into error kinds: errors.Is(err, client.ErrNotFound)
// (the same values as internal/errdefs) works on anything it returns. When
// the daemon cannot be reached, errors are of type *UnreachableError.
package client
