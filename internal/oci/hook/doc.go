// Package hook validates and runs the runtime-spec POSIX-platform hooks
// (prestart, createRuntime, createContainer, startContainer, poststart,
// poststop): each hook is executed with exactly its own args and env, gets
// the container state JSON on stdin, and is killed when its timeout expires.
// Package hook runs a hook in the namespaces of its caller; entering the
// container namespaces for createContainer and startContainer is the
// caller's business.
package hook
