// Package daemon holds gantryd's end-to-end tests: they build gantryd and
// gantry into a temporary directory, start gantryd as root on a temporary
// root, state and socket, push images built offline to a real registry on
// 127.0.0.1 (test/registry), and drive everything through the gantry CLI,
// checking its output, its exit codes and the daemon's behaviour on bad
// configs and shutdown. Every test stops its gantryd and unmounts what is
// left below its root in t.Cleanup, also when it fails.
package daemon
