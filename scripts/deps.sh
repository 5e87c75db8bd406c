#!/usr/bin/env bash
# deps.sh installs what building and testing Gantry needs on a Debian host.
# Idempotent: only missing packages are installed; fast when all is present.
# Run as root from anywhere; caches go under <repo>/_build.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${repo}/_build"
staticcheck_version="${STATICCHECK_VERSION:-v0.8.2}"

pkgs=(
	runc containerd podman docker-registry busybox-static
	containernetworking-plugins libseccomp-dev pkg-config skopeo umoci
	bats hyperfine strace jq
	gcc libc6-dev # cgo of gantry-oci; gcc -static of gantry-init needs libc.a
)

if [[ "$(id -u)" != 0 ]]; then
	echo "deps.sh: must run as root" >&2
	exit 1
fi

installed=()
missing=()
for p in "${pkgs[@]}"; do
	if [[ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" != installed ]]; then
		missing+=("$p")
	fi
done

updated=0
apt_update() {
	if [[ $updated == 0 ]]; then
		apt-get update -qq
		updated=1
	fi
}

if ((${#missing[@]})); then
	apt_update
	# With the recommended packages, as the suites were verified (podman's
	# recommends among them).
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
	installed+=("${missing[@]}")
fi

# The dynamic busybox conflicts with busybox-static, so it is only unpacked:
# test rootfs builders copy _build/busybox-dyn/bin/busybox and its libraries.
if [[ ! -x "${build}/busybox-dyn/bin/busybox" ]]; then
	mkdir -p "${build}/debs"
	if ! compgen -G "${build}/debs/busybox_*.deb" >/dev/null; then
		apt_update
		(cd "${build}/debs" && apt-get download -qq -o APT::Sandbox::User=root busybox)
	fi
	deb="$(ls "${build}"/debs/busybox_*.deb | sort | tail -n1)"
	rm -rf "${build}/busybox-dyn.tmp"
	dpkg-deb -x "$deb" "${build}/busybox-dyn.tmp"
	rm -rf "${build}/busybox-dyn"
	mv "${build}/busybox-dyn.tmp" "${build}/busybox-dyn"
	installed+=("busybox (dynamic, unpacked to ${build}/busybox-dyn)")
fi

gobin="$(go env GOPATH)/bin"
if [[ ! -x "${gobin}/staticcheck" ]] ||
	! "${gobin}/staticcheck" -version 2>/dev/null | grep -q "${staticcheck_version#v}"; then
	GOFLAGS=-mod=mod go install "honnef.co/go/tools/cmd/staticcheck@${staticcheck_version}"
	installed+=("staticcheck ${staticcheck_version} (${gobin})")
fi

if ((${#installed[@]})); then
	printf 'deps.sh: installed: %s\n' "${installed[@]}"
else
	echo "deps.sh: everything present"
fi
