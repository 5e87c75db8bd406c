// Package ptytest opens pseudo-terminals for tests that drive a program
// through a terminal (the gantry CLI's -t, its resize forwarding).
package ptytest
