#!/usr/bin/env bash
# bench.sh RUNTIME_A RUNTIME_B: compares the wall time of `RUNTIME run` of a
# busybox bundle whose process is /bin/true. Runs are interleaved (A, B, A,
# B, ...), BENCH_RUNS of each (default 30), each with a fresh container id
# and its own --root. Prints both medians and the ratio A/B.
# Then it compares `RUNTIME exec ID /bin/true`: one long-running container
# (busybox sleep 1000) per runtime, execs interleaved, BENCH_RUNS of each;
# both containers are deleted at the end, also on failure.
# Times come from bash's $EPOCHREALTIME (microseconds, no process forked
# for the clock), so they hold the runtime's fork/exec and run only.
# Informational only: it never fails on timing. Needs root.
set -euo pipefail

if [[ $# -ne 2 ]]; then
	echo "usage: $0 RUNTIME_A RUNTIME_B" >&2
	exit 2
fi
a="$1"
b="$2"
runs="${BENCH_RUNS:-30}"
if ((runs < 1)); then
	echo "bench.sh: BENCH_RUNS must be at least 1" >&2
	exit 2
fi
for r in "$a" "$b"; do
	if [[ ! -x "$r" ]]; then
		echo "bench.sh: runtime $r: not an executable file" >&2
		exit 2
	fi
done

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$(mktemp -d /tmp/gantry-bench.XXXXXX)"
cleanup() {
	# Delete anything a failed run left, then the work tree.
	for root in "$work"/root-*; do
		[[ -d "$root" ]] || continue
		rt="$a"
		[[ "$root" == *-B-* ]] && rt="$b"
		for id in $("$rt" --root "$root" list -q 2>/dev/null || true); do
			"$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
		done
	done
	rmdir /sys/fs/cgroup/*/gantry-test /sys/fs/cgroup/gantry-test 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

(cd "$repo" && go run ./test/bundle/cmd/mkbundle "$work/bundle" /bin/true)

# run_one RUNTIME LABEL N: prints the wall time of one run in nanoseconds.
run_one() {
	local rt="$1" label="$2" n="$3"
	local root="$work/root-$label-$n" id="bench-$label-$n-$$"
	local start end
	start=${EPOCHREALTIME/[.,]/}
	if ! "$rt" --root "$root" run --bundle "$work/bundle" "$id" >/dev/null 2>"$work/err"; then
		echo "bench.sh: $rt run $id failed: $(head -n1 "$work/err")" >&2
		end=""
	else
		end=${EPOCHREALTIME/[.,]/}
	fi
	"$rt" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
	rm -rf "$root"
	if [[ -n "$end" ]]; then
		echo $(((end - start) * 1000))
	fi
	return 0
}

# median FILE: the median of the numbers in FILE, in nanoseconds.
median() {
	sort -n "$1" | awk '{v[NR] = $1} END {
		if (NR == 0) { print "NaN"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2)
	}'
}

# report TITLE FILE_A FILE_B: prints both medians and the ratio A/B.
report() {
	local title="$1" fa="$2" fb="$3" ma mb na nb
	ma=$(median "$fa")
	mb=$(median "$fb")
	na=$(wc -l <"$fa")
	nb=$(wc -l <"$fb")
	echo "$title"
	awk -v a="$a" -v b="$b" -v ma="$ma" -v mb="$mb" -v na="$na" -v nb="$nb" 'BEGIN {
		if (ma == "NaN") printf "A %s: no successful runs\n", a
		else printf "A %s: median %.2f ms over %d runs\n", a, ma / 1e6, na
		if (mb == "NaN") printf "B %s: no successful runs\n", b
		else printf "B %s: median %.2f ms over %d runs\n", b, mb / 1e6, nb
		if (ma == "NaN" || mb == "NaN" || mb == 0) print "ratio A/B: n/a"
		else printf "ratio A/B: %.3f\n", ma / mb
	}'
}

: >"$work/A"
: >"$work/B"
for ((i = 0; i < runs; i++)); do
	run_one "$a" A "$i" >>"$work/A"
	run_one "$b" B "$i" >>"$work/B"
done

report "run (busybox /bin/true):" "$work/A" "$work/B"

# The exec benchmark: one sleeping container per runtime, each from its own
# bundle (so each has its own cgroup) and --root.
(cd "$repo" && go run ./test/bundle/cmd/mkbundle "$work/bundle-exec-A" /bin/sleep 1000)
(cd "$repo" && go run ./test/bundle/cmd/mkbundle "$work/bundle-exec-B" /bin/sleep 1000)
exec_ids=()
for label in A B; do
	rt="$a"
	[[ "$label" == B ]] && rt="$b"
	root="$work/root-$label-exec"
	id="bench-exec-$label-$$"
	if "$rt" --root "$root" run --detach --bundle "$work/bundle-exec-$label" "$id" \
		</dev/null >/dev/null 2>"$work/err"; then
		exec_ids+=("$id")
	else
		echo "bench.sh: $rt run --detach $id failed: $(head -n1 "$work/err")" >&2
		exec_ids+=("")
	fi
done

# exec_one RUNTIME LABEL ID: prints the wall time of one exec in nanoseconds.
exec_one() {
	local rt="$1" label="$2" id="$3"
	local root="$work/root-$label-exec" start end
	[[ -n "$id" ]] || return 0
	start=${EPOCHREALTIME/[.,]/}
	if ! "$rt" --root "$root" exec "$id" /bin/true </dev/null >/dev/null 2>"$work/err"; then
		echo "bench.sh: $rt exec $id failed: $(head -n1 "$work/err")" >&2
		return 0
	fi
	end=${EPOCHREALTIME/[.,]/}
	echo $(((end - start) * 1000))
}

: >"$work/exec-A"
: >"$work/exec-B"
for ((i = 0; i < runs; i++)); do
	exec_one "$a" A "${exec_ids[0]}" >>"$work/exec-A"
	exec_one "$b" B "${exec_ids[1]}" >>"$work/exec-B"
done
echo
report "exec (busybox /bin/true into a running container):" "$work/exec-A" "$work/exec-B"
