#!/usr/bin/env bash
# Regenerates the Go code of api/gantry/v1 from its .proto files. Needs
# protoc (Debian: protobuf-compiler), protoc-gen-go and protoc-gen-go-grpc;
# the generated code is checked in, so only someone changing a .proto runs it.
set -euo pipefail

cd "$(dirname "$0")/.."

PROTOC_GEN_GO_VERSION=v1.36.12
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2
gobin="$(go env GOPATH)/bin"

if ! command -v protoc >/dev/null; then
	echo "proto.sh: protoc is missing: apt-get install -y protobuf-compiler" >&2
	exit 1
fi
if [[ ! -x "$gobin/protoc-gen-go" ]]; then
	go install "google.golang.org/protobuf/cmd/protoc-gen-go@${PROTOC_GEN_GO_VERSION}"
fi
if [[ ! -x "$gobin/protoc-gen-go-grpc" ]]; then
	GOFLAGS= go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@${PROTOC_GEN_GO_GRPC_VERSION}"
fi

PATH="$gobin:$PATH" protoc \
	-I api \
	--go_out=. --go_opt=module=github.com/gantry-project/gantry \
	--go-grpc_out=. --go-grpc_opt=module=github.com/gantry-project/gantry \
	api/gantry/v1/*.proto
