#!/usr/bin/env bash
# The Gantry demo: start gantryd with its defaults in the background (unless
# one already answers), build a busybox image locally from busybox-static
# (no registry, no internet), import it as "busybox" and run
#   gantry run --rm busybox echo hello from gantry
# Usage: demo.sh [BIN_DIR | BIN_DIR/gantry-oci]   (default: <repo>/bin)
# Needs root and `make deps build` first (make demo does both). gantryd
# keeps running afterwards: try `bin/gantry run -it busybox sh`.
# GANTRYD_ARGS (e.g. "--root /tmp/r --state /tmp/s --address /tmp/s/g.sock",
# with GANTRY_ADDRESS=/tmp/s/g.sock) runs the demo on other directories.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="${1:-$repo/bin}"
[[ -d "$bin" ]] || bin="$(dirname "$bin")"
bin="$(cd "$bin" && pwd)"
gantry="$bin/gantry"

if [[ "$(id -u)" != 0 ]]; then
	echo "demo.sh: must run as root" >&2
	exit 1
fi
for b in gantryd gantry gantry-shim gantry-oci; do
	if [[ ! -x "$bin/$b" ]]; then
		echo "demo.sh: $bin/$b is missing: run 'make build'" >&2
		exit 1
	fi
done
if [[ ! -x /bin/busybox ]]; then
	echo "demo.sh: /bin/busybox is missing: apt-get install busybox-static (or 'make deps')" >&2
	exit 1
fi

if ! "$gantry" version >/dev/null 2>&1; then
	log=/run/gantry-demo-gantryd.log
	echo "starting gantryd in the background (log: $log)"
	# shellcheck disable=SC2086 # GANTRYD_ARGS is a list of flags
	setsid "$bin/gantryd" ${GANTRYD_ARGS:-} >>"$log" 2>&1 </dev/null &
	for _ in $(seq 1 100); do
		"$gantry" version >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$gantry" version >/dev/null || { echo "demo.sh: gantryd did not start; see $log" >&2; exit 1; }
fi

if ! "$gantry" images -q 2>/dev/null | grep -q 'docker.io/library/busybox:latest'; then
	archive="$(mktemp /tmp/gantry-busybox.XXXXXX.tar)"
	trap 'rm -f "$archive"' EXIT
	echo "building a busybox image from /bin/busybox"
	(cd "$repo" && go run ./test/busyboximage -o "$archive" >/dev/null)
	"$gantry" import "$archive" >/dev/null
	"$gantry" tag localhost/gantry-busybox:latest busybox >/dev/null
fi

echo "+ gantry run --rm busybox echo hello from gantry"
"$gantry" run --rm busybox echo hello from gantry
