// Command tapreport summarises a run of the OCI runtime-tools validation
// suite written by scripts/conformance.sh: it parses the TAP stream of every
// validation executable (ok / not ok lines, SKIP and TODO directives, the
// 1..N plan), counts an executable that exited non-zero, timed out or broke
// its plan as one failure named after it, compares all failures with the
// allow-list test/conformance/known-failures.txt, and ends its output with
// the line "N passed, N failed, N skipped". It exits 1 when a failure is not
// on the allow-list and 2 when its inputs cannot be read.
package main
