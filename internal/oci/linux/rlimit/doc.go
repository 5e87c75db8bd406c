// Package rlimit maps runtime-spec process.rlimits names (RLIMIT_NOFILE, ...)
// to resource numbers and applies them with prlimit(2), either to the calling
// process just before execve or to another process by pid.
package rlimit
