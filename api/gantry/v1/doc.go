// Package gantryv1 holds gantryd's gRPC API: the .proto files of the image,
// content, snapshot and system services and the Go code generated from them
// by scripts/proto.sh (checked in, never edited by hand). Every call names
// its namespace in the gRPC metadata key "gantry-namespace"; errors carry
// gRPC status codes that client/ turns back into internal error kinds.
package gantryv1
