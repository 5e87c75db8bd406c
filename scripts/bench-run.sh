#!/usr/bin/env bash
# bench-run.sh [BIN_DIR]: `gantry run` against containerd 1.6 (`ctr run`)
# and podman 4.3 (`podman run`), then memory per running container.
#
# BIN_DIR (default: the repository's bin/) holds gantryd, gantry,
# gantry-shim and gantry-oci (`make build`). Everything runs on private
# directories below one temporary directory: gantryd (its own root, state
# and socket), containerd (its own root, state, sockets and runc root, CRI
# off, cgroupfs) and podman (its own --root, --runroot, tmpdir and runtime
# root, cgroupfs manager, overlay storage). The same offline busybox image
# (test/busyboximage) is imported into each. ctr and podman use runc, their
# default runtime; gantry uses gantry-oci.
#
# 1. Latency: BENCH_RUNS (default 30) runs each, interleaved (gantry, ctr,
#    podman, gantry, ...), of
#      gantry run --rm busybox /bin/true
#      ctr run --rm IMAGE ID /bin/true
#      podman run --rm --network none IMAGE /bin/true
#    and prints the medians and the ratios gantry/ctr and gantry/podman.
# 2. Memory: BENCH_CONTAINERS (default 100) sleeping containers with
#    `gantry run -d busybox sleep 3600` (then the same with `ctr run -d`,
#    unless BENCH_CTR_MEMORY=0), and prints per container: the growth of
#    MemAvailable (everything: processes, kernel objects, page cache), the
#    sum of the Pss of the new processes (shims and containers, from
#    /proc/PID/smaps_rollup) and the shims' Pss alone; and the daemon's RSS
#    before and after.
# BENCH_BASE=DIR also runs a second gantryd with the binaries of DIR (a
# baseline build, on its own directories) and times its `gantry run --rm`
# interleaved with the others: the medians of both and their ratio, under
# the same load. BENCH_PODMAN=0 leaves podman out (it is the slowest).
# BENCH_GANTRYD_TOML holds top-level gantryd config lines for the gantryd
# under test only (not the baseline), e.g. 'rm_rootfs_volatile = true' to
# compare a setting against the default with the same binaries.
# BENCH_STRACE=1 also writes an `strace -f -tt` of gantryd (the one this
# script started, never another) during one `gantry run --rm` to
# $BENCH_STRACE_OUT (default ./bench-run.strace) for docs/performance.md's
# phase table.
#
# Informational only: it never fails on timing. It cleans up everything it
# started (containers, shims, daemons, mounts, cgroups, files), also when it
# fails or is interrupted. Needs root.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="$(cd "${1:-$repo/bin}" && pwd)"
runs="${BENCH_RUNS:-30}"
ncont="${BENCH_CONTAINERS:-100}"
ctr_memory="${BENCH_CTR_MEMORY:-1}"
base_bin=""
if [[ -n "${BENCH_BASE:-}" ]]; then
	base_bin="$(cd "$BENCH_BASE" && pwd)"
	for b in gantryd gantry gantry-shim gantry-oci; do
		if [[ ! -x "$base_bin/$b" ]]; then
			echo "bench-run.sh: $base_bin/$b: not an executable file" >&2
			exit 2
		fi
	done
fi

if [[ $(id -u) -ne 0 ]]; then
	echo "bench-run.sh: needs root" >&2
	exit 2
fi
if ((runs < 1 || ncont < 1)); then
	echo "bench-run.sh: BENCH_RUNS and BENCH_CONTAINERS must be at least 1" >&2
	exit 2
fi
for b in gantryd gantry gantry-shim gantry-oci; do
	if [[ ! -x "$bin/$b" ]]; then
		echo "bench-run.sh: $bin/$b: not an executable file (run 'make build')" >&2
		exit 2
	fi
done
have_ctr=1
have_podman=1
for t in containerd ctr containerd-shim-runc-v2 runc; do
	command -v "$t" >/dev/null || { echo "bench-run.sh: $t not installed: skipping containerd" >&2; have_ctr=0; }
done
for t in podman conmon runc; do
	command -v "$t" >/dev/null || { echo "bench-run.sh: $t not installed: skipping podman" >&2; have_podman=0; }
done
[[ "${BENCH_PODMAN:-1}" == 0 ]] && have_podman=0

# Short: unix socket paths are limited to 108 bytes.
work="$(mktemp -d /tmp/gbr.XXXXXX)"
tag="gbr$$"                     # names this run's containers and cgroups
gns="$tag"                      # gantry namespace
gantry_cg="gantry-bench-$$"     # gantryd's cgroup_parent: cgroups /$gantry_cg/$gns-ID
ctr_cg="gantry-bench-ctr-$$"    # containerd: cgroups /$ctr_cg/ID
pod_cg="gantry-bench-podman-$$" # podman: --cgroup-parent /$pod_cg
image_ref="localhost/gantry-busybox:latest"
run_dir_existed=0
[[ -e /run/containerd ]] && run_dir_existed=1
gantryd_pid=""
based_pid=""
containerd_pid=""

log() { echo "bench-run.sh: $*" >&2; }

# --- cleanup ---------------------------------------------------------------

# pids_mentioning S: the pids (but ours) whose command line contains S.
pids_mentioning() {
	local f pid
	for f in /proc/[0-9]*/cmdline; do
		pid="${f#/proc/}"
		pid="${pid%/cmdline}"
		[[ "$pid" == "$$" || "$pid" == "$BASHPID" ]] && continue
		if { tr '\0' ' ' <"$f"; } 2>/dev/null | grep -qF -- "$1"; then
			echo "$pid"
		fi
	done
}

# kill_cgroups GLOB: SIGKILLs the processes in the cgroups matching GLOB
# (below /sys/fs/cgroup/*/) and in their descendants, and removes them all,
# deepest first.
kill_cgroups() {
	local tops d p i
	tops=$(find /sys/fs/cgroup/*/ -mindepth 1 -maxdepth 3 -type d -path "/sys/fs/cgroup/*/$1" 2>/dev/null || true)
	# On a pure cgroup v2 host the cgroup is /sys/fs/cgroup/$1 itself.
	for d in /sys/fs/cgroup/$1; do
		[[ -d "$d" ]] && tops="$tops $d"
	done
	[[ -n "$tops" ]] || return 0
	for d in $(find $tops -type d 2>/dev/null | awk '{print length, $0}' | sort -rn | cut -d' ' -f2-); do
		[[ -e "$d/freezer.state" ]] && { echo THAWED >"$d/freezer.state"; } 2>/dev/null
		for p in $(cat "$d/cgroup.procs" 2>/dev/null); do
			kill -9 "$p" 2>/dev/null || true
		done
		for i in $(seq 50); do
			rmdir "$d" 2>/dev/null && break
			[[ -d "$d" ]] || break
			sleep 0.1
		done
	done
}

unmount_below() {
	local m
	for m in $(awk -v d="$1" '$5 == d || index($5, d "/") == 1 {print length($5), $5}' /proc/self/mountinfo | sort -rn | cut -d' ' -f2-); do
		umount -l "$m" 2>/dev/null || true
	done
}

cleanup() {
	set +e
	trap - EXIT INT TERM
	if [[ -n "$gantryd_pid" ]]; then
		for id in $(gantry ps -a -q 2>/dev/null); do
			gantry rm -f "$id" >/dev/null 2>&1
		done
		kill -TERM "$gantryd_pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$gantryd_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$gantryd_pid" 2>/dev/null
	fi
	if [[ -n "$based_pid" ]]; then
		for id in $(gbase ps -a -q 2>/dev/null); do
			gbase rm -f "$id" >/dev/null 2>&1
		done
		kill -TERM "$based_pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$based_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$based_pid" 2>/dev/null
	fi
	if [[ -n "$containerd_pid" ]]; then
		for id in $(ctrc task ls -q 2>/dev/null); do
			ctrc task kill -s SIGKILL "$id" >/dev/null 2>&1
		done
		sleep 0.5
		for id in $(ctrc task ls -q 2>/dev/null); do
			ctrc task rm -f "$id" >/dev/null 2>&1
		done
		for id in $(ctrc container ls -q 2>/dev/null); do
			ctrc container rm "$id" >/dev/null 2>&1
		done
		kill -TERM "$containerd_pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$containerd_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$containerd_pid" 2>/dev/null
	fi
	if [[ -d "$work/p" ]] && ((have_podman)); then
		podmanc rm --all --force --time 0 >/dev/null 2>&1
	fi
	# Shims, conmons and anything else started with our directory in its
	# command line; then whatever is left in our containers' cgroups.
	for p in $(pids_mentioning "$work"); do kill -9 "$p" 2>/dev/null; done
	kill_cgroups "$gantry_cg"
	kill_cgroups "$ctr_cg"
	kill_cgroups "$pod_cg"
	unmount_below "$work"
	if ((!run_dir_existed)); then
		rmdir /run/containerd/s /run/containerd 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- set-up ----------------------------------------------------------------

log "work directory $work"
(cd "$repo" && go run ./test/busyboximage -o "$work/busybox.tar" >/dev/null)

# gantry runs the CLI against our gantryd in our namespace.
gantry() { "$bin/gantry" --address "$work/g/state/gantryd.sock" --namespace "$gns" "$@"; }
# gbase does the same against the baseline's gantryd (BENCH_BASE).
gbase() { "$base_bin/gantry" --address "$work/b/state/gantryd.sock" --namespace "$gns" "$@"; }

# start_gantryd BIN DIR CLI PIDVAR: starts BIN/gantryd on DIR, sets the
# variable PIDVAR to its pid, and imports the image with the CLI function
# CLI.
start_gantryd() {
	local b="$1" d="$2" cli="$3" started_pid extra=""
	mkdir -p "$d/etc"
	[[ "$d" == "$work/g" ]] && extra="${BENCH_GANTRYD_TOML:-}"
	printf 'log_level = "info"\ncgroup_parent = "/%s"\n%s\n[registry]\nconfig_dir = "%s"\n' "$gantry_cg" "$extra" "$d/etc" >"$d/gantryd.toml"
	"$b/gantryd" --root "$d/root" --state "$d/state" \
		--address "$d/state/gantryd.sock" --config "$d/gantryd.toml" \
		</dev/null >"$d/gantryd.log" 2>&1 &
	started_pid=$!
	printf -v "$4" %s "$started_pid"
	for _ in $(seq 300); do
		"$cli" version >/dev/null 2>&1 && break
		kill -0 "$started_pid" 2>/dev/null || { log "gantryd exited: $(tail -n 5 "$d/gantryd.log")"; exit 1; }
		sleep 0.1
	done
	"$cli" import "$work/busybox.tar" >/dev/null
	"$cli" tag "$image_ref" busybox >/dev/null
}

# ctrc runs ctr against our containerd.
ctrc() { ctr --address "$work/c/c.sock" --namespace "$tag" "$@"; }

start_containerd() {
	local c="$work/c" d
	for d in root state opt fifo runc-root; do mkdir -p "$c/$d"; done
	cat >"$c/config.toml" <<EOF
version = 2
root = "$c/root"
state = "$c/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]
[grpc]
  address = "$c/c.sock"
[ttrpc]
  address = "$c/c.sock.ttrpc"
[metrics]
  address = ""
[cgroup]
  path = ""
[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$c/opt"
  [plugins."io.containerd.runtime.v1.linux"]
    runtime_root = "$c/runc-v1"
  [plugins."io.containerd.monitor.v1.cgroups"]
    no_prometheus = true
EOF
	containerd --config "$c/config.toml" </dev/null >"$c/containerd.log" 2>&1 &
	containerd_pid=$!
	for _ in $(seq 300); do
		ctr --address "$c/c.sock" --connect-timeout 2s version >/dev/null 2>&1 && break
		kill -0 "$containerd_pid" 2>/dev/null || { log "containerd exited: $(tail -n 5 "$c/containerd.log")"; exit 1; }
		sleep 0.1
	done
	ctrc images import "$work/busybox.tar" >/dev/null
}

# ctr_run_args ID: the flags of every ctr container: runc's state under our
# directory, FIFOs there too, and a cgroup of its own (cgroupfs).
ctr_run_args() {
	echo --runtime io.containerd.runc.v2 --runc-root "$work/c/runc-root" \
		--fifo-dir "$work/c/fifo" --cgroup "/$ctr_cg/$1"
}

# podmanc runs podman with our storage, run root and configuration.
podman_env=()
podman_global=()
podmanc() { env "${podman_env[@]}" podman "${podman_global[@]}" "$@"; }

setup_podman() {
	local p="$work/p" d nofile nproc
	for d in root runroot tmp imgtmp home/.config/containers net hooks volumes runtime-root; do
		mkdir -p "$p/$d"
	done
	# podman runs runc without --root (/run/runc, the host's); this wrapper
	# gives every call, including the exit command's, our own root.
	printf '#!/bin/sh\ncase " $* " in *" --root "*|*" --root="*) ;; *) set -- --root %s "$@" ;; esac\nexec %s "$@"\n' \
		"$p/runtime-root" "$(command -v runc)" >"$p/runc"
	chmod 755 "$p/runc"
	# podman raises RLIMIT_NOFILE/NPROC for root beyond what this machine's
	# hard limits allow without CAP_SYS_RESOURCE: keep them at most 1024.
	nofile=$(ulimit -Sn)
	nproc=$(ulimit -Su)
	[[ "$nofile" == unlimited || "$nofile" -gt 1024 ]] && nofile=1024
	[[ "$nproc" == unlimited || "$nproc" -gt 1024 ]] && nproc=1024
	cat >"$p/containers.conf" <<EOF
[containers]
log_driver = "k8s-file"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$p/events.log"
lock_type = "file"
num_locks = 256
tmp_dir = "$p/tmp"
static_dir = "$p/root/libpod"
volume_path = "$p/volumes"
hooks_dir = ["$p/hooks"]
conmon_path = ["/usr/bin/conmon", "/usr/libexec/podman/conmon"]
[network]
network_config_dir = "$p/net"
EOF
	printf '[storage]\ndriver = "overlay"\ngraphroot = "%s"\nrunroot = "%s"\n' "$p/root" "$p/runroot" >"$p/storage.conf"
	printf 'unqualified-search-registries = []\nshort-name-mode = "disabled"\n' >"$p/registries.conf"
	echo '{"default": [{"type": "insecureAcceptAnything"}]}' >"$p/home/.config/containers/policy.json"
	podman_env=(
		"CONTAINERS_CONF=$p/containers.conf" "CONTAINERS_STORAGE_CONF=$p/storage.conf"
		"CONTAINERS_REGISTRIES_CONF=$p/registries.conf" "HOME=$p/home"
		"XDG_CONFIG_HOME=$p/home/.config" "TMPDIR=$p/imgtmp"
	)
	podman_global=(
		--root "$p/root" --runroot "$p/runroot" --tmpdir "$p/tmp" --storage-driver overlay
		--cgroup-manager cgroupfs --runtime "$p/runc" --events-backend file
		--network-config-dir "$p/net" --hooks-dir "$p/hooks" --volumepath "$p/volumes"
	)
	podmanc load --input "$work/busybox.tar" >/dev/null 2>&1
}

start_gantryd "$bin" "$work/g" gantry gantryd_pid
[[ -n "$base_bin" ]] && start_gantryd "$base_bin" "$work/b" gbase based_pid
((have_ctr)) && start_containerd
((have_podman)) && setup_podman

# --- latency -----------------------------------------------------------------

now_ns() { local t="${EPOCHREALTIME/./}"; echo "$t"000; }

# time_cmd OUT LABEL CMD...: appends CMD's wall time (ns) to OUT if it
# succeeds; a failure is reported and not counted.
time_cmd() {
	local out="$1" label="$2" start end
	shift 2
	start=$(now_ns)
	if "$@" </dev/null >/dev/null 2>"$work/err"; then
		end=$(now_ns)
		echo $((end - start)) >>"$out"
	else
		log "$label failed: $(head -n 1 "$work/err")"
	fi
	return 0
}

median() {
	sort -n "$1" | awk '{v[NR] = $1} END {
		if (NR == 0) { print "NaN"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2)
	}'
}

: >"$work/t-gantry"
: >"$work/t-base"
: >"$work/t-ctr"
: >"$work/t-podman"
# One warm-up run of each (page cache, first-use set-up), not counted.
time_cmd /dev/null "gantry run (warm-up)" gantry run --rm busybox /bin/true
[[ -n "$base_bin" ]] && time_cmd /dev/null "baseline gantry run (warm-up)" gbase run --rm busybox /bin/true
((have_ctr)) && time_cmd /dev/null "ctr run (warm-up)" ctrc run --rm $(ctr_run_args warm) "$image_ref" warm /bin/true
((have_podman)) && time_cmd /dev/null "podman run (warm-up)" podmanc run --rm --network none --pull never --cgroup-parent "/$pod_cg" "$image_ref" /bin/true
for ((i = 0; i < runs; i++)); do
	time_cmd "$work/t-gantry" "gantry run" gantry run --rm busybox /bin/true
	if [[ -n "$base_bin" ]]; then
		time_cmd "$work/t-base" "baseline gantry run" gbase run --rm busybox /bin/true
	fi
	if ((have_ctr)); then
		time_cmd "$work/t-ctr" "ctr run" ctrc run --rm $(ctr_run_args "r$i") "$image_ref" "r$i" /bin/true
	fi
	if ((have_podman)); then
		time_cmd "$work/t-podman" "podman run" podmanc run --rm --network none --pull never \
			--cgroup-parent "/$pod_cg" "$image_ref" /bin/true
	fi
done

mg=$(median "$work/t-gantry")
mb=$(median "$work/t-base")
mc=$(median "$work/t-ctr")
mp=$(median "$work/t-podman")
echo "run --rm busybox /bin/true, $runs runs each, interleaved (medians):"
awk -v mg="$mg" -v mb="$mb" -v mc="$mc" -v mp="$mp" -v base="$base_bin" \
	-v ng="$(wc -l <"$work/t-gantry")" -v nb="$(wc -l <"$work/t-base")" \
	-v nc="$(wc -l <"$work/t-ctr")" -v np="$(wc -l <"$work/t-podman")" 'BEGIN {
	show("gantry run (gantry-oci)", mg, ng)
	if (base != "") show("baseline gantry run", mb, nb)
	show("ctr run (runc)", mc, nc)
	show("podman run (runc)", mp, np)
	ratio("gantry/ctr", mg, mc)
	if (base != "") { ratio("baseline/ctr", mb, mc); ratio("gantry/baseline", mg, mb) }
	ratio("gantry/podman", mg, mp)
}
function show(name, m, n) {
	if (m == "NaN") printf "  %-26s no successful runs\n", name
	else printf "  %-26s %8.1f ms  (%d runs)\n", name, m / 1e6, n
}
function ratio(name, a, b) {
	if (a == "NaN" || b == "NaN" || b == 0) printf "  %-26s n/a\n", name
	else printf "  %-26s %8.3f\n", name, a / b
}'

if [[ "${BENCH_STRACE:-0}" == 1 ]]; then
	out="${BENCH_STRACE_OUT:-$PWD/bench-run.strace}"
	# Only gantryd, which this script started.
	strace -f -tt -s 200 -e trace=execve,mount,umount2,clone,clone3,wait4,openat,connect,accept4,unlinkat,mkdirat,renameat,fsync,fdatasync \
		-p "$gantryd_pid" -o "$out" 2>/dev/null &
	strace_pid=$!
	sleep 1
	echo "trace-start $(now_ns)" >"$out.client"
	gantry run --rm busybox /bin/true </dev/null >/dev/null 2>&1 || true
	echo "trace-end $(now_ns)" >>"$out.client"
	sleep 0.5
	kill -INT "$strace_pid" 2>/dev/null || true
	wait "$strace_pid" 2>/dev/null || true
	log "strace of gantryd written to $out (client timestamps in $out.client)"
fi

# --- memory ------------------------------------------------------------------

mem_available_kb() { awk '/^MemAvailable:/ {print $2}' /proc/meminfo; }
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }

# descendants PID...: the pids of the processes below PID (not PID itself).
descendants() {
	ps -e -o pid=,ppid= | awk -v roots="$*" '
		BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) want[r[i]] = 1 }
		{ parent[$1] = $2; pids[NR] = $1 }
		END {
			changed = 1
			while (changed) {
				changed = 0
				for (i in pids) { p = pids[i]; if (!(p in want) && (parent[p] in want)) { want[p] = 2; changed = 1 } }
			}
			for (p in want) if (want[p] == 2) print p
		}'
}

sum_pss() {
	local total=0 p
	for p in "$@"; do total=$((total + $(pss_kb "$p"))); done
	echo "$total"
}

# memory_report NAME DAEMON_PID SHIM_PATTERN AVAIL_BEFORE DAEMON_RSS_BEFORE
memory_report() {
	local name="$1" dpid="$2" pattern="$3" avail0="$4" drss0="$5"
	local shims conts avail1 shim_pss cont_pss
	# Let the page cache and the daemon settle.
	sync
	sleep 3
	avail1=$(mem_available_kb)
	mapfile -t shims < <(for p in $(pids_mentioning "$work"); do
		{ tr '\0' ' ' <"/proc/$p/cmdline"; } 2>/dev/null | grep -q -- "$pattern" && echo "$p"
	done)
	mapfile -t conts < <(descendants "${shims[@]}")
	shim_pss=$(sum_pss "${shims[@]}")
	cont_pss=$(sum_pss "${conts[@]}")
	awk -v name="$name" -v n="$ncont" -v ns="${#shims[@]}" -v nc="${#conts[@]}" \
		-v avail=$((avail0 - avail1)) -v shim="$shim_pss" -v cont="$cont_pss" \
		-v d0="$drss0" -v d1="$(rss_kb "$dpid")" 'BEGIN {
		printf "%s, %d sleeping containers (%d shims, %d container processes):\n", name, n, ns, nc
		printf "  MemAvailable drop           %8.2f MB per container (%.1f MB in all)\n", avail / n / 1024, avail / 1024
		printf "  Pss of shims + containers   %8.2f MB per container (%.1f MB in all)\n", (shim + cont) / n / 1024, (shim + cont) / 1024
		printf "  Pss of the shims alone      %8.2f MB per container\n", shim / n / 1024
		printf "  daemon RSS                  %8.1f MB before, %.1f MB with the containers\n", d0 / 1024, d1 / 1024
	}'
}

echo
sync
sleep 2
avail0=$(mem_available_kb)
drss0=$(rss_kb "$gantryd_pid")
for ((i = 0; i < ncont; i++)); do
	gantry run -d --name "m$i" busybox sleep 3600 </dev/null >/dev/null 2>"$work/err" ||
		log "gantry run -d m$i failed: $(head -n 1 "$work/err")"
done
memory_report "gantry (gantry-shim, gantry-oci)" "$gantryd_pid" gantry-shim "$avail0" "$drss0"
# Remove them before the next measurement.
for ((i = 0; i < ncont; i++)); do gantry rm -f "m$i" >/dev/null 2>&1 || true; done

if ((have_ctr)) && [[ "$ctr_memory" == 1 ]]; then
	echo
	sync
	sleep 2
	avail0=$(mem_available_kb)
	drss0=$(rss_kb "$containerd_pid")
	for ((i = 0; i < ncont; i++)); do
		ctrc run -d --null-io $(ctr_run_args "m$i") "$image_ref" "m$i" sleep 3600 </dev/null >/dev/null 2>"$work/err" ||
			log "ctr run -d m$i failed: $(head -n 1 "$work/err")"
	done
	memory_report "containerd 1.6 (containerd-shim-runc-v2, runc)" "$containerd_pid" containerd-shim-runc-v2 "$avail0" "$drss0"
fi
