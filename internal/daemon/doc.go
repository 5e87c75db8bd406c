// Package daemon is gantryd's wiring, in plain Go: it reads the TOML config,
// takes the root's lock, opens the content store, the metadata database and
// the snapshotter picked by a switch on the config, builds the image store
// over them, and serves the gRPC services of internal/services on a unix
// socket until its context ends, then stops gracefully and closes everything
// in the reverse order. Only cmd/gantryd and tests import it.
package daemon
