// Package v1 is the wire protocol of gantry-shim's own API, version
// "gantry.shim.v1": newline-terminated JSON over the shim's unix socket,
// one request and one response per connection (Attach then turns the
// connection into a raw byte stream). It holds only the message types and
// their constants, with no dependency beyond encoding/json, so that the
// shim binary stays small. docs/design/shim.md describes the protocol.
package v1
