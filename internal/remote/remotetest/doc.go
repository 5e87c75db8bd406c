// Package remotetest is a fault-injecting reverse proxy for tests of the
// registry client: it sits in front of a real registry (test/registry),
// counts blob requests and the Range headers they carry, and on request
// answers with a status of its choosing, cuts, corrupts, rewrites or stalls
// a response, or drops a request's Range header.
package remotetest
