// Package testsuite is the conformance suite every snapshotter runs from its
// own tests (after containerd's core/snapshots/testsuite): Prepare, Commit
// and View chains, the Remove rules, Walk, Usage, reopening, long chains,
// and reading and writing through real mounts made by snapshot.MountAll
// when the tests run as root (without root, bind mounts are used through
// their source directory and the other cases are skipped).
package testsuite
