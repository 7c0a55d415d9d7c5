# Every target that needs root, Open vSwitch or the local cluster sets them up itself through hack/.
SHELL := /bin/bash
GO ?= go
BIN := bin
GOFLAGS_BUILD := -trimpath
CGO_ENABLED ?= 0
export CGO_ENABLED

.PHONY: all build images manifests test test-unit test-e2e fuzz generate verify-generate lint verify bench demo clean cluster-up cluster-down

all: build

build:
	@mkdir -p $(BIN)
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/antrea-agent ./cmd/antrea-agent
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/antrea ./cmd/antrea-cni
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/antrea-controller ./cmd/antrea-controller
	$(GO) build $(GOFLAGS_BUILD) -o $(BIN)/antrea-install-cni ./cmd/antrea-install-cni

# The antrea-agent and antrea-controller images (build/images/) as archives under _output/images,
# built without a Docker engine and imported into the local cluster's containerd when it is up.
images:
	hack/images.sh

# build/yamls/antrea.yml from its pieces; IMAGE_REGISTRY, IMAGE_TAG and IMAGE_PULL_POLICY choose the
# images (default: the local ones `make images` imports).
manifests:
	hack/manifests.sh

# Everything: set-up, unit tests, real-stack tests on a local cluster, fuzzing, smoke test, teardown.
test:
	hack/test.sh all

# Tests that need nothing but Go: -short skips every real-stack test (root, Open vSwitch, the local
# cluster) with a message saying how to run it, also when run as root.
test-unit:
	$(GO) test -short -count=1 ./...

# Real-stack tests only, on a local cluster that this target starts and stops.
test-e2e:
	hack/test.sh e2e

fuzz:
	hack/fuzz.sh $${FUZZTIME:-10s}

generate:
	hack/generate.sh

verify-generate:
	hack/generate.sh --verify

# golangci-lint (.golangci.yml, version pinned in hack/tools/lint) and shellcheck.
lint:
	hack/lint.sh

# The fast, non-root stage CI runs first: generated code up to date, lint, unit tests.
verify: verify-generate lint test-unit

bench:
	hack/bench.sh

demo:
	hack/demo.sh

cluster-up:
	hack/local-cluster.sh up

cluster-down:
	hack/local-cluster.sh down

clean:
	-hack/local-cluster.sh down
	rm -rf $(BIN) _output
