// Package cli is the gantry command line: one cobra command per verb, each
// a thin caller of client/ that formats what gantryd answers. Exit codes
// follow docker's CLI: 0 on success, 1 when a command fails (gantryd's
// errors, and gantryd not running: docker exits 1 with "Cannot connect to
// the Docker daemon"), 125 for a usage error (bad flag or arguments).
package cli
