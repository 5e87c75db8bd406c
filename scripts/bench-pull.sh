#!/usr/bin/env bash
# bench-pull.sh: compares a cold `gantry pull` with a cold `ctr images pull`
# (containerd 1.6) of the same synthetic image, and measures this machine's
# limits in the same run. Needs root. Informational only: it never fails on
# timing.
#
# What it does, all under one temp dir that the EXIT trap removes (with the
# daemons, the registry and any mount left below it), also on failure:
#  1. starts the Debian docker-registry on 127.0.0.1 (random port, temp
#     storage) and pushes the image of test/bench (bench.PullImage: 8 layers,
#     ~400 MB of tar, 7 gzip and 1 zstd, ~37,000 small text files and 5
#     large incompressible ones) with test/bench/cmd/pushimage;
#  2. measures the limits: single-core decompression of the image's gzip
#     blobs and of its zstd blob with klauspost/compress, the library gantryd
#     uses (test/bench/cmd/decompress under `taskset -c 0`, GOMAXPROCS=1;
#     GNU `gzip -dc` and `zstd -dc` as references), and disk write
#     throughput (dd of 400 MiB with conv=fsync into the temp dir), and the
#     file system's small-file creation rate (test/bench/cmd/mkfiles: 10,000
#     files of 4 KiB), the bound that matters for layers of small files;
#  3. cold pulls, interleaved (gantry, ctr, gantry, ctr, ...), BENCH_PULL_RUNS
#     of each (default 5). Each run starts its daemon on a fresh, empty root
#     (gantryd: own root, state, socket and config; containerd: own root,
#     state, sockets, a generated config with CRI disabled, snapshotter
#     overlayfs), runs `sync`, then times the pull alone. Both unpack: gantry
#     pull always does, and `ctr images pull` unpacks into the overlayfs
#     snapshotter by default. gantryd downloads 3 layers at once (its
#     default), ctr with no limit (its default, --max-concurrent-downloads 0).
#     The time of a `sync` right after each pull is reported too (the dirty
#     data each leaves to the kernel);
#  4. BENCH_PULL_CONCURRENT_RUNS rounds (default 3) of: one cold gantry pull,
#     then BENCH_PULL_CONCURRENCY (default 10) concurrent cold pulls of the
#     same image on another fresh gantryd; prints both medians and the ratio;
#  5. one traced gantry pull (its plain progress lines, timestamped) and the
#     fractions of the limits reached.
#
# Usage: scripts/bench-pull.sh [GANTRYD GANTRY]   (default bin/gantryd bin/gantry)
# BENCH_PULL_KEEP=DIR copies the logs (daemons, traced pull) to DIR;
# BENCH_PULL_SCALE=N divides the image's sizes and counts by N (a quick check
# of the script itself; the figures then mean nothing); BENCH_PULL_PERF=1
# records gantryd with `perf record -g` during the traced pull and prints its
# top symbols (give an unstripped gantryd: `go build -o DIR/gantryd
# ./cmd/gantryd`; bin/gantryd is built with -s -w).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gantryd="${1:-$repo/bin/gantryd}"
gantry="${2:-$repo/bin/gantry}"
runs="${BENCH_PULL_RUNS:-5}"
crounds="${BENCH_PULL_CONCURRENT_RUNS:-3}"
conc="${BENCH_PULL_CONCURRENCY:-10}"
keep="${BENCH_PULL_KEEP:-}"
scale="${BENCH_PULL_SCALE:-1}"
perf="${BENCH_PULL_PERF:-}"
registry_bin=/usr/bin/docker-registry

die() {
	echo "bench-pull.sh: $*" >&2
	exit 2
}
[[ $(id -u) -eq 0 ]] || die "needs root"
for n in "$runs" "$conc" "$scale"; do
	[[ "$n" =~ ^[1-9][0-9]*$ ]] || die "BENCH_PULL_RUNS, BENCH_PULL_CONCURRENCY and BENCH_PULL_SCALE must be positive integers"
done
[[ "$crounds" =~ ^[0-9]+$ ]] || die "BENCH_PULL_CONCURRENT_RUNS must be a number (0 skips the concurrent pulls)"
if [[ -n "$perf" ]] && ! command -v perf >/dev/null; then
	die "BENCH_PULL_PERF is set but perf is not installed"
fi
for b in "$gantryd" "$gantry" "$registry_bin"; do
	[[ -x "$b" ]] || die "$b: not an executable file (make build; scripts/deps.sh installs docker-registry)"
done
for c in containerd ctr go curl taskset; do
	command -v "$c" >/dev/null || die "$c: not found"
done

# Short: unix socket paths are limited to 108 bytes.
work="$(mktemp -d /tmp/gpb.XXXXXX)"
registry_pid=""
gantryd_pid=""
containerd_pid=""
bg_pids=()

# stop_pid PID: SIGTERM, up to 30 s, then SIGKILL; waits for it.
stop_pid() {
	local pid="$1" i
	[[ -n "$pid" ]] || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for ((i = 0; i < 300; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# unmount_below DIR: unmounts every mount at or below DIR, deepest first.
unmount_below() {
	local dir="$1" m
	findmnt -rn -o TARGET | awk -v d="$dir" 'index($0, d "/") == 1 || $0 == d' | sort -r |
		while IFS= read -r m; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || echo "bench-pull.sh: cannot unmount $m" >&2
		done
}

cleanup() {
	local rc=$?
	set +e
	for p in "${bg_pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	stop_pid "$gantryd_pid"
	stop_pid "$containerd_pid"
	stop_pid "$registry_pid"
	unmount_below "$work"
	if [[ -n "$keep" && -d "$work/logs" ]]; then
		mkdir -p "$keep" && cp -r "$work/logs/." "$keep/"
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/bin" "$work/blobs" "$work/logs" "$work/registry/storage" "$work/docker"
# Copies, so that a `make build` during the run does not change what is measured.
cp "$gantryd" "$work/bin/gantryd"
cp "$gantry" "$work/bin/gantry"
gantryd="$work/bin/gantryd"
gantry="$work/bin/gantry"
export DOCKER_CONFIG="$work/docker" # no credentials from the host

now() { date +%s%N; }

echo "== setup"
(cd "$repo" && go build -o "$work/bin/" ./test/bench/cmd/pushimage ./test/bench/cmd/decompress ./test/bench/cmd/mkfiles)

# The registry, on a free random port (retried if the port is taken).
port=""
for ((attempt = 0; attempt < 5; attempt++)); do
	p=$((20000 + RANDOM % 40000))
	ss -Htln "sport = :$p" | grep -q . && continue
	cat >"$work/registry/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $work/registry/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$p
  secret: $(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
EOF
	OTEL_TRACES_EXPORTER=none "$registry_bin" serve "$work/registry/config.yml" >"$work/logs/registry.log" 2>&1 &
	registry_pid=$!
	for ((i = 0; i < 300; i++)); do
		kill -0 "$registry_pid" 2>/dev/null || break
		if curl -fs -o /dev/null "http://127.0.0.1:$p/v2/"; then
			port="$p"
			break
		fi
		sleep 0.1
	done
	[[ -n "$port" ]] && break
	stop_pid "$registry_pid"
	registry_pid=""
done
[[ -n "$port" ]] || die "docker-registry did not start: $(tail -n 3 "$work/logs/registry.log")"
echo "registry: 127.0.0.1:$port"

"$work/bin/pushimage" -registry "127.0.0.1:$port" -name bench/pull:latest -scale "$scale" -blobs "$work/blobs" >"$work/image.env"
declare -A img
while IFS='=' read -r k v; do img[$k]="$v"; done <"$work/image.env"
ref="${img[ref]}"
echo "image: $ref ${img[digest]}"
awk -v l="${img[layers]}" -v f="${img[files]}" -v s="${img[symlinks]}" -v d="${img[dirs]}" \
	-v u="${img[uncompressed_bytes]}" -v c="${img[compressed_bytes]}" \
	-v b="${img[build_seconds]}" -v p="${img[push_seconds]}" 'BEGIN {
	printf "  %d layers, %d files, %d symlinks, %d dirs; %.1f MB of tar, %.1f MB compressed (built in %ss, pushed in %ss)\n",
		l, f, s, d, u / 1e6, c / 1e6, b, p }'

echo
echo "== this machine's limits"
# decompress_rate GLOB: the klauspost single-core rate over the blobs.
gz_env="$work/gz.env"
zs_env="$work/zs.env"
GOMAXPROCS=1 taskset -c 0 "$work/bin/decompress" "$work"/blobs/*.tar.gz >"$gz_env"
GOMAXPROCS=1 taskset -c 0 "$work/bin/decompress" "$work"/blobs/*.tar.zst >"$zs_env"
gz_rate=$(awk -F= '$1 == "mb_per_second" {print $2}' "$gz_env")
zs_rate=$(awk -F= '$1 == "mb_per_second" {print $2}' "$zs_env")
echo "gzip decompression, 1 core, klauspost/compress: $gz_rate MB/s of output (the 7 gzip blobs)"
echo "zstd decompression, 1 core, klauspost/compress: $zs_rate MB/s of output (the zstd blob)"
# GNU tools for reference: the time of the whole command, output to /dev/null.
t0=$(now)
cat "$work"/blobs/*.tar.gz | taskset -c 0 gzip -dc >/dev/null
t1=$(now)
awk -v b="${img[gzip_uncompressed_bytes]}" -v t=$((t1 - t0)) 'BEGIN { printf "  reference: GNU gzip -dc, 1 core: %.1f MB/s\n", b / 1e6 / (t / 1e9) }'
if command -v zstd >/dev/null; then
	t0=$(now)
	taskset -c 0 zstd -qdc "$work"/blobs/*.tar.zst >/dev/null
	t1=$(now)
	awk -v b="${img[zstd_uncompressed_bytes]}" -v t=$((t1 - t0)) 'BEGIN { printf "  reference: zstd -dc, 1 core: %.1f MB/s\n", b / 1e6 / (t / 1e9) }'
fi
sync
t0=$(now)
dd if=/dev/zero of="$work/dd.bin" bs=4M count=100 conv=fsync status=none
t1=$(now)
rm -f "$work/dd.bin"
disk_rate=$(awk -v t=$((t1 - t0)) 'BEGIN { printf "%.1f", 400 * 1048576 / 1e6 / (t / 1e9) }')
echo "disk write, dd bs=4M count=100 conv=fsync into $work: $disk_rate MB/s"
"$work/bin/mkfiles" -n 10000 -size 4096 "$work/mkfiles" >"$work/mkfiles.env"
mkdir -p "$work/trash"
mv "$work/mkfiles" "$work/trash/mkfiles" # deleted by the EXIT trap only (see retire)
files_rate=$(awk -F= '$1 == "files_per_second" {print $2}' "$work/mkfiles.env")
echo "file creation, 10,000 files of 4 KiB, 1 goroutine (test/bench/cmd/mkfiles): $files_rate files/s"

# ---- daemons ------------------------------------------------------------

# retire DIR: unmounts what is below DIR and moves it to $work/trash, which
# only the EXIT trap deletes. Deleting a root of ~40,000 files between runs
# would slow the next pull: on an ext4 without a journal (this machine's),
# the inode allocator skips every inode deleted in the last 60 s (6 min
# while its inode table block is dirty), looking each one up
# (recently_deleted() in fs/ext4/ialloc.c), and that cost lands in the next
# pull's file creations.
retired=0
retire() {
	local dir="$1"
	[[ -e "$dir" ]] || return 0
	unmount_below "$dir"
	mkdir -p "$work/trash"
	mv "$dir" "$work/trash/$retired"
	retired=$((retired + 1))
}

# start_gantryd: a gantryd on a fresh root under $work/g (removed first).
start_gantryd() {
	local d="$work/g" i
	stop_gantryd
	mkdir -p "$d/etc"
	cat >"$d/gantryd.toml" <<EOF
root = "$d/root"
state = "$d/state"
address = "$d/g.sock"
log_level = "info"
snapshotter = "overlay"

[registry]
config_dir = "$d/etc"
EOF
	"$gantryd" --config "$d/gantryd.toml" >>"$work/logs/gantryd.log" 2>&1 &
	gantryd_pid=$!
	for ((i = 0; i < 300; i++)); do
		kill -0 "$gantryd_pid" 2>/dev/null || die "gantryd exited: $(tail -n 3 "$work/logs/gantryd.log")"
		"$gantry" --address "$d/g.sock" version >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	die "gantryd did not answer on $d/g.sock within 15s"
}

stop_gantryd() {
	stop_pid "$gantryd_pid"
	gantryd_pid=""
	retire "$work/g"
}

g() { "$gantry" --address "$work/g/g.sock" -n bench "$@"; }

# start_containerd: a containerd on a fresh root under $work/c.
start_containerd() {
	local d="$work/c" i
	stop_containerd
	mkdir -p "$d/root" "$d/state" "$d/opt"
	cat >"$d/config.toml" <<EOF
version = 2
root = "$d/root"
state = "$d/state"
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
  address = "$d/c.sock"

[ttrpc]
  address = "$d/c.sock.ttrpc"

[metrics]
  address = ""

[cgroup]
  path = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$d/opt"
  [plugins."io.containerd.monitor.v1.cgroups"]
    no_prometheus = true
EOF
	containerd --config "$d/config.toml" >>"$work/logs/containerd.log" 2>&1 &
	containerd_pid=$!
	for ((i = 0; i < 300; i++)); do
		kill -0 "$containerd_pid" 2>/dev/null || die "containerd exited: $(tail -n 3 "$work/logs/containerd.log")"
		ctr --address "$d/c.sock" --connect-timeout 1s version >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	die "containerd did not answer on $d/c.sock within 15s"
}

stop_containerd() {
	stop_pid "$containerd_pid"
	containerd_pid=""
	retire "$work/c"
}

c() { ctr --address "$work/c/c.sock" -n bench "$@"; }

# ---- measurements -------------------------------------------------------

# median FILE: the median of the numbers in FILE ("NaN" when empty).
median() {
	sort -n "$1" | awk '{v[NR] = $1} END {
		if (NR == 0) { print "NaN"; exit }
		if (NR % 2) print v[(NR + 1) / 2]; else print int((v[NR / 2] + v[NR / 2 + 1]) / 2)
	}'
}

# timed OUT SYNCOUT CMD...: runs CMD (stdout and stderr to the run log),
# appends its wall time in ns to OUT and that of a `sync` after it to
# SYNCOUT; reports a failure without stopping.
timed() {
	local out="$1" syncout="$2" t0 t1 t2
	shift 2
	sync
	t0=$(now)
	if ! "$@" >>"$work/logs/runs.log" 2>&1; then
		echo "bench-pull.sh: $* failed: $(tail -n 1 "$work/logs/runs.log")" >&2
		return 0
	fi
	t1=$(now)
	sync
	t2=$(now)
	echo $((t1 - t0)) >>"$out"
	echo $((t2 - t1)) >>"$syncout"
}

# check_cold_gantry: the fresh gantryd's store is empty.
check_cold_gantry() {
	local n
	n=$(g images -q 2>/dev/null | wc -l)
	n=$((n + $(g snapshot ls 2>/dev/null | tail -n +2 | wc -l)))
	n=$((n + $(g content ls -q 2>/dev/null | wc -l)))
	[[ $n -eq 0 ]] || echo "bench-pull.sh: gantryd's store is not empty before a cold pull" >&2
}

check_cold_ctr() {
	local n
	n=$(c images ls -q | wc -l)
	n=$((n + $(c content ls -q | wc -l)))
	n=$((n + $(c snapshots ls | tail -n +2 | wc -l)))
	[[ $n -eq 0 ]] || echo "bench-pull.sh: containerd's store is not empty before a cold pull" >&2
}

echo
echo "== cold pulls, interleaved, $runs of each"
: >"$work/gantry.ns"
: >"$work/gantry.sync"
: >"$work/ctr.ns"
: >"$work/ctr.sync"
for ((i = 0; i < runs; i++)); do
	start_gantryd
	check_cold_gantry
	timed "$work/gantry.ns" "$work/gantry.sync" g pull --quiet "$ref"
	if ((i == 0)); then
		echo "gantry: $(g images | tail -n +2 | wc -l) image, $(g snapshot ls | tail -n +2 | wc -l) snapshots after the pull"
		g system df >"$work/logs/gantry-df.txt" 2>&1 || true
	fi
	stop_gantryd
	start_containerd
	check_cold_ctr
	timed "$work/ctr.ns" "$work/ctr.sync" c images pull --plain-http "$ref"
	if ((i == 0)); then
		echo "ctr: $(c images ls -q | wc -l) image, $(c snapshots ls | tail -n +2 | wc -l) snapshots after the pull (overlayfs)"
		du -sb "$work/c/root" >"$work/logs/ctr-du.txt" 2>&1 || true
	fi
	stop_containerd
	echo "run $((i + 1)): gantry $(tail -n 1 "$work/gantry.ns" | awk '{printf "%.2f s", $1 / 1e9}'), ctr $(tail -n 1 "$work/ctr.ns" | awk '{printf "%.2f s", $1 / 1e9}')"
done
mg=$(median "$work/gantry.ns")
mc=$(median "$work/ctr.ns")
mgs=$(median "$work/gantry.sync")
mcs=$(median "$work/ctr.sync")
awk -v mg="$mg" -v mc="$mc" -v mgs="$mgs" -v mcs="$mcs" -v ng="$(wc -l <"$work/gantry.ns")" -v nc="$(wc -l <"$work/ctr.ns")" 'BEGIN {
	if (mg == "NaN") print "gantry pull: no successful runs"
	else printf "gantry pull: median %.2f s over %d runs (then sync: %.2f s)\n", mg / 1e9, ng, mgs / 1e9
	if (mc == "NaN") print "ctr images pull: no successful runs"
	else printf "ctr images pull: median %.2f s over %d runs (then sync: %.2f s)\n", mc / 1e9, nc, mcs / 1e9
	if (mg == "NaN" || mc == "NaN") print "ratio gantry/ctr: n/a"
	else printf "ratio gantry/ctr: %.3f (target 0.5 or less); with the sync after each: %.3f\n", mg / mc, (mg + mgs) / (mc + mcs)
}'

echo
echo "== $conc concurrent cold gantry pulls vs one, $crounds rounds"
: >"$work/one.ns"
: >"$work/many.ns"
for ((i = 0; i < crounds; i++)); do
	start_gantryd
	timed "$work/one.ns" /dev/null g pull --quiet "$ref"
	start_gantryd
	sync
	bg_pids=()
	t0=$(now)
	for ((j = 0; j < conc; j++)); do
		g pull --quiet "$ref" >"$work/conc-$j.out" 2>&1 &
		bg_pids+=($!)
	done
	failed=0
	for p in "${bg_pids[@]}"; do
		wait "$p" || failed=$((failed + 1))
	done
	t1=$(now)
	bg_pids=()
	if ((failed > 0)); then
		echo "bench-pull.sh: $failed of $conc concurrent pulls failed: $(cat "$work"/conc-*.out | grep -v '^sha256:' | head -n 1)" >&2
	else
		echo $((t1 - t0)) >>"$work/many.ns"
	fi
	digests=$(cat "$work"/conc-*.out | sort -u | wc -l)
	((digests == 1)) || echo "bench-pull.sh: the concurrent pulls printed $digests different results" >&2
	echo "round $((i + 1)): one $(tail -n 1 "$work/one.ns" | awk '{printf "%.2f s", $1 / 1e9}'), $conc at once $(awk '{printf "%.2f s", $1 / 1e9}' <<<"$((t1 - t0))")"
done
stop_gantryd
mo=$(median "$work/one.ns")
mm=$(median "$work/many.ns")
awk -v mo="$mo" -v mm="$mm" -v n="$conc" 'BEGIN {
	if (mo == "NaN" || mm == "NaN") { print "concurrent pulls: n/a"; exit }
	printf "one pull: median %.2f s; %d concurrent pulls: median %.2f s; ratio %.3f (target 1.2 or less)\n", mo / 1e9, n, mm / 1e9, mm / mo
}'

echo
echo "== traced gantry pull (plain progress lines, seconds since the start)"
start_gantryd
perf_pid=""
if [[ -n "$perf" ]]; then
	perf record -q -F 999 -g -p "$gantryd_pid" -o "$work/logs/perf.data" >/dev/null 2>&1 &
	perf_pid=$!
	bg_pids+=("$perf_pid")
	sleep 1
fi
sync
t0="${EPOCHREALTIME/./}"
g pull "$ref" 2>&1 | while IFS= read -r line; do
	us=$((${EPOCHREALTIME/./} - t0))
	printf '%3d.%03d %s\n' $((us / 1000000)) $((us / 1000 % 1000)) "$line"
done | tee "$work/logs/traced-pull.txt" | grep -v ': downloading' || true
awk '/: done \(/ { last = $1 } /^ *[0-9.]+ pulled / { end = $1 } END {
	if (last != "" && end != "")
		printf "last blob downloaded at %.2f s; unpack and record after it: %.2f s of %.2f s\n", last, end - last, end }' \
	"$work/logs/traced-pull.txt"
if [[ -n "$perf_pid" ]]; then
	kill -INT "$perf_pid" 2>/dev/null || true
	wait "$perf_pid" 2>/dev/null || true
	bg_pids=()
	perf report -i "$work/logs/perf.data" --no-children --sort dso,symbol --stdio 2>/dev/null |
		grep -E '^ +[0-9.]+%' | head -n 40 >"$work/logs/perf-top.txt" || true
	echo "perf: gantryd's top symbols (self time, all threads) during the traced pull:"
	head -n 25 "$work/logs/perf-top.txt"
fi
stop_gantryd

echo
echo "== fractions of this machine's limits (uncompressed image bytes / time)"
awk -v mg="$mg" -v mc="$mc" -v u="${img[uncompressed_bytes]}" -v gu="${img[gzip_uncompressed_bytes]}" \
	-v zu="${img[zstd_uncompressed_bytes]}" -v gz="$gz_rate" -v zs="$zs_rate" -v disk="$disk_rate" \
	-v inodes="$((img[files] + img[symlinks] + img[dirs]))" -v fr="$files_rate" 'BEGIN {
	# The time one core needs to decompress every layer, the disk to write
	# them, and the file system to create the files of the image.
	tdec = gu / 1e6 / gz + zu / 1e6 / zs
	tdisk = u / 1e6 / disk
	tfiles = inodes / fr
	printf "bounds: decompressing all layers on one core %.2f s; writing %.0f MB at the dd rate %.2f s; creating %d files, symlinks and dirs at the mkfiles rate %.2f s\n", tdec, u / 1e6, tdisk, inodes, tfiles
	split("gantry ctr", who, " ")
	t["gantry"] = mg; t["ctr"] = mc
	for (k = 1; k <= 2; k++) {
		w = who[k]
		if (t[w] == "NaN") continue
		s = t[w] / 1e9
		printf "%s: %.1f MB/s, %.0f files/s: %.0f%% of the single-core decompression rate, %.0f%% of the disk write rate, %.0f%% of the file creation rate\n",
			w, u / 1e6 / s, inodes / s, 100 * tdec / s, 100 * tdisk / s, 100 * tfiles / s
	}
}'
