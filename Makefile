# Gantry: a container runtime stack. `make help` lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X github.com/gantry-project/gantry/internal/oci/cli.Version=$(VERSION)
GANTRY_LDFLAGS := -X github.com/gantry-project/gantry/internal/daemon.Version=$(VERSION) -X github.com/gantry-project/gantry/internal/cli.Version=$(VERSION)
export CGO_ENABLED := 1

.PHONY: help deps build test test-unit test-integration conformance bench lint demo demo-oci clean proto

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

deps: ## install every Debian package and Go tool the build and tests need (idempotent)
	@bash scripts/deps.sh

build: ## build the binaries into bin/
	$(GO) build -trimpath -tags "netgo osusergo" -ldflags "-s -w -linkmode external -extldflags -static $(LDFLAGS)" -o $(BIN)/gantry-oci ./cmd/gantry-oci
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(GANTRY_LDFLAGS)" -o $(BIN)/gantryd ./cmd/gantryd
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w $(GANTRY_LDFLAGS)" -o $(BIN)/gantry ./cmd/gantry
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w" -o $(BIN)/gantry-shim ./cmd/gantry-shim
	$(CC) -static -O2 -s -Wall -Wextra -Werror -o $(BIN)/gantry-init cmd/gantry-init/gantry-init.c

PKG_TESTS := ./internal/... ./cmd/... ./client/... ./test/bundle/... ./test/probe/... ./test/conformance/... ./test/registry/... ./test/layout/...
E2E_TESTS := ./test/integration/ ./test/clients/ ./test/daemon/ ./test/shim/ ./test/containers/ ./test/reliability/

test: deps build lint ## everything CI runs: lint, unit and root package tests, end-to-end (own suite, containerd, podman), conformance
	GANTRY_TEST_LARGE=1 $(GO) test -count=1 -timeout 30m $(PKG_TESTS)
	GANTRY_RUNTIME=$(CURDIR)/$(BIN)/gantry-oci GANTRY_RELIABILITY_CYCLES=500 $(GO) test -count=1 -p 1 -timeout 40m $(E2E_TESTS)
	bash scripts/conformance.sh $(CURDIR)/$(BIN)/gantry-oci

test-unit: ## unit and root package tests only
	$(GO) test -count=1 $(PKG_TESTS)

test-integration: build ## end-to-end tests of bin/gantry-oci (GANTRY_RUNTIME=$$(command -v runc) to check the tests against runc)
	GANTRY_RUNTIME=$${GANTRY_RUNTIME:-$(CURDIR)/$(BIN)/gantry-oci} $(GO) test -count=1 -p 1 -v $(E2E_TESTS)

conformance: deps build ## OCI runtime-tools validation suite against bin/gantry-oci
	bash scripts/conformance.sh $(CURDIR)/$(BIN)/gantry-oci

bench: deps build ## every benchmark: gantry-oci vs runc, gantry run vs ctr and podman, memory per container, pull vs containerd (medians, ratios)
	bash scripts/bench.sh $(CURDIR)/$(BIN)/gantry-oci $$(command -v runc)
	bash scripts/bench-run.sh $(CURDIR)/$(BIN)
	bash scripts/bench-pull.sh $(CURDIR)/$(BIN)/gantryd $(CURDIR)/$(BIN)/gantry

lint: ## gofmt, go vet, staticcheck
	@out=$$(gofmt -l api client cmd internal test); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$$($(GO) env GOPATH)/bin/staticcheck ./...

demo: deps build ## start gantryd, build a busybox image locally, run `gantry run --rm busybox echo hello from gantry`
	bash scripts/demo.sh $(CURDIR)/$(BIN)

demo-oci: deps build ## the runtime alone: run a busybox bundle with gantry-oci
	bash scripts/demo-oci.sh $(CURDIR)/$(BIN)/gantry-oci

proto: ## regenerate api/ from its .proto files (needs protoc: apt-get install protobuf-compiler)
	bash scripts/proto.sh

clean: ## remove build outputs
	rm -rf $(BIN) _build
