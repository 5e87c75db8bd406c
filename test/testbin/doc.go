// Package testbin builds the project's binaries from the working tree into
// a directory, for the end-to-end suites that run them (gantryd finds the
// shim, the runtime and the init next to itself).
package testbin
