// Package testcgroup finds and removes the cgroups that the end-to-end
// tests' daemons create below a cgroup parent of their own, in every
// hierarchy (cgroup v1, v2 or hybrid), so that a test leaves none behind
// even when it fails.
package testcgroup
