#!/usr/bin/env bash
# conformance.sh: run the OCI runtime-tools validation suite against a
# runc-compatible runtime binary and compare its failures with
# test/conformance/known-failures.txt.
#
# Usage: scripts/conformance.sh RUNTIME_BINARY
#
# Environment:
#   CONFORMANCE_TIMEOUT  seconds each validation executable may run (default 120)
#   CONFORMANCE_BUDGET   seconds the whole run may take (default 2700); once
#                        spent, the remaining executables are not run and
#                        each counts as one failure
#   CONFORMANCE_ROOT     state dir passed to the runtime as --root
#                        (default /run/gantry-conformance; wiped before and after)
#   CONFORMANCE_TESTS    space-separated executable names to run (default: all)
#   CONFORMANCE_REBUILD  set to 1 to rebuild the suite even if it is cached
#
# Output: _build/conformance/results/<executable>.{tap,stderr,exit,leftovers},
# all.tap, report.txt; the last line printed is
# "N passed, N failed, N skipped". Exit status: 0 when every failure is on the
# allow-list, 1 when some is not, 2 on a usage or build error.
# See docs/conformance.md.
set -euo pipefail

RT_MODULE=github.com/opencontainers/runtime-tools
RT_VERSION=v0.9.1-0.20251205004911-5e639034dcdc

die() {
	echo "conformance: $*" >&2
	exit 2
}

[[ $# -eq 1 ]] || die "usage: $0 RUNTIME_BINARY"
runtime_bin=$(command -v -- "$1" || true)
[[ -n $runtime_bin && -x $runtime_bin && -f $runtime_bin ]] || die "runtime binary $1: not an executable file"
runtime_bin=$(realpath -- "$runtime_bin")
[[ $(id -u) -eq 0 ]] || die "the validation suite must run as root"

repo=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
build=$repo/_build/conformance
src=$build/runtime-tools
results=$build/results
tmp=$build/tmp
wrapper=$build/bin/runtime
timeout_s=${CONFORMANCE_TIMEOUT:-120}
budget_s=${CONFORMANCE_BUDGET:-2700}
state_root=${CONFORMANCE_ROOT:-/run/gantry-conformance}
allow_list=$repo/test/conformance/known-failures.txt

export GOWORK=off GOTOOLCHAIN=${GOTOOLCHAIN:-local}

# --- build the suite -------------------------------------------------------
build_suite() {
	local json dir
	json=$(cd / && GOFLAGS=-mod=mod go mod download -json "$RT_MODULE@$RT_VERSION") ||
		die "download $RT_MODULE@$RT_VERSION: $json"
	dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$json")
	[[ -n $dir && -d $dir ]] || die "download $RT_MODULE@$RT_VERSION: no Dir in: $json"

	echo "conformance: building $RT_MODULE@$RT_VERSION in $src"
	rm -rf -- "$src"
	mkdir -p -- "$(dirname -- "$src")"
	cp -r -- "$dir" "$src"
	chmod -R u+w -- "$src"
	# The module zip keeps vendor/modules.txt but not the vendored sources,
	# so build in module mode against the module's own go.mod and go.sum.
	rm -rf -- "$src/vendor"
	(
		cd -- "$src"
		# runtimetest runs inside the container's rootfs: static, no cgo
		# (the upstream Makefile's "runtimetest" target).
		CGO_ENABLED=0 go build -mod=mod -buildvcs=false -trimpath -tags "netgo osusergo" -o runtimetest ./cmd/runtimetest
		# Every validation/*/*.go main, as the Makefile's
		# "validation-executables" target names them: validation/X/X.t.
		mkdir -p _bin
		go build -mod=mod -buildvcs=false -trimpath -o _bin/ ./validation/...
		local b
		for b in _bin/*; do
			mv -- "$b" "validation/$(basename -- "$b")/$(basename -- "$b").t"
		done
		rmdir _bin
	) || die "build $RT_MODULE@$RT_VERSION failed"
	echo "$RT_VERSION" >"$src/.gantry-built"
}

if [[ ${CONFORMANCE_REBUILD:-0} == 1 || ! -f $src/.gantry-built ||
	$(cat -- "$src/.gantry-built") != "$RT_VERSION" || ! -x $src/runtimetest ]]; then
	build_suite
fi

mkdir -p -- "$build/bin"
(cd -- "$repo" && go build -o "$build/bin/tapreport" ./test/conformance/tapreport) ||
	die "build test/conformance/tapreport failed"

# The tests call "$RUNTIME create|start|state|kill|delete ..." with no
# global flags, so runc would use its default /run/runc, where the host's
# own containers live. A wrapper pins a dedicated --root instead.
cat >"$wrapper" <<EOF
#!/bin/sh
exec '$runtime_bin' --root '$state_root' "\$@"
EOF
chmod 0755 "$wrapper"

# --- clean up --------------------------------------------------------------
# Test cgroup paths from the runtime-tools cgroups package: AbsCgroupPath
# "/cgrouptest" and RelCgroupPath "testdir/cgrouptest/container" (relative to
# the runtime's own cgroup). Only these names are ever removed, and rmdir
# only removes empty cgroups.
cgroup_leaves=(testdir/cgrouptest/container testdir/cgrouptest testdir cgrouptest)

cleanup_cgroups() {
	local own d p leaf
	own=$(cut -d: -f3- /proc/self/cgroup | sort -u)
	for d in /sys/fs/cgroup /sys/fs/cgroup/*/; do
		[[ -d $d ]] || continue
		d=${d%/}
		for p in "" $own; do
			for leaf in "${cgroup_leaves[@]}"; do
				if [[ -d $d$p/$leaf ]]; then
					if rmdir -- "$d$p/$leaf" 2>/dev/null; then
						echo "cgroup $d$p/$leaf: left over, removed"
					else
						echo "cgroup $d$p/$leaf: left over, not removed (still in use?)"
					fi
				fi
			done
		done
	done
}

# cleanup_after NAME: delete leftover containers in our --root, unmount and
# remove bundles under our TMPDIR, remove test cgroups. Prints what it did.
cleanup_after() {
	local id m
	for id in $(timeout -k 5 10 "$wrapper" list -q 2>/dev/null); do
		echo "container $id: left over, deleting"
		timeout -k 5 10 "$wrapper" delete -f "$id" 2>&1 || true
	done
	# Mount points under our TMPDIR, deepest first (field 5 of mountinfo).
	for m in $(awk -v p="$tmp/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
		echo "mount $m: left over, unmounting"
		umount -l -- "$m" 2>&1 || true
	done
	rm -rf --one-file-system -- "${tmp:?}"/* 2>/dev/null || true
	cleanup_cgroups
}

# --- run -------------------------------------------------------------------
rm -rf -- "$results" "$tmp"
mkdir -p -- "$results" "$tmp" "$state_root"

cd -- "$src"
if [[ -n ${CONFORMANCE_TESTS:-} ]]; then
	read -r -a tests <<<"$CONFORMANCE_TESTS"
else
	tests=()
	for t in validation/*/*.t; do
		tests+=("$(basename -- "$t" .t)")
	done
fi

echo "conformance: runtime $runtime_bin (--root $state_root), ${#tests[@]} executables, timeout ${timeout_s}s each, ${budget_s}s in all"
start_all=$SECONDS
for name in "${tests[@]}"; do
	exe=validation/$name/$name.t
	[[ -x $exe ]] || die "$exe: no such validation executable"
	if ((SECONDS - start_all >= budget_s)); then
		# tapreport counts "not-run" as one failure of the executable.
		: >"$results/$name.tap"
		echo not-run >"$results/$name.exit"
		printf 'conformance: %-40s not run: time budget of %ds spent\n' "$name" "$budget_s"
		continue
	fi
	start=$SECONDS
	# timeout puts itself in a new process group; after the executable
	# ends, whatever it left in that group (e.g. "unshare ... sleep 10000"
	# helpers of the namespace tests) is killed by that group id.
	# The tests find "runtimetest" and "rootfs-amd64.tar.gz" in the
	# working directory, so they run from the module root.
	RUNTIME=$wrapper TMPDIR=$tmp timeout -k 10 "$timeout_s" "./$exe" \
		>"$results/$name.tap" 2>"$results/$name.stderr" </dev/null &
	pid=$!
	rc=0
	wait "$pid" || rc=$?
	kill -KILL -- "-$pid" 2>/dev/null || true
	echo "$rc" >"$results/$name.exit"
	cleanup_after "$name" >"$results/$name.leftovers" 2>&1
	note=""
	[[ $rc -eq 124 || $rc -eq 137 ]] && note=" (timed out)"
	[[ -s $results/$name.leftovers ]] && note+=" (cleaned up leftovers, see $name.leftovers)"
	printf 'conformance: %-40s exit %3d %4ds%s\n' "$name" "$rc" "$((SECONDS - start))" "$note"
done
rm -rf -- "$tmp"
# Everything ran under our --root: remove it when empty.
rmdir -- "$state_root" 2>/dev/null || true

for name in "${tests[@]}"; do
	echo "# executable: $name (exit $(cat -- "$results/$name.exit"))"
	cat -- "$results/$name.tap"
done >"$results/all.tap"

echo "conformance: ran ${#tests[@]} executables in $((SECONDS - start_all))s; TAP and stderr in $results"
rc=0
"$build/bin/tapreport" -results "$results" -allow "$allow_list" -timeout "$timeout_s" "${tests[@]}" |
	tee "$results/report.txt" || rc=$?
exit "$rc"
