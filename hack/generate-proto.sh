#!/usr/bin/env bash
# Generates the Go code of the CNI shim <-> agent protocol (pkg/cni/cnipb/cni.proto):
# cni.pb.go (messages, protoc-gen-go) and cni_grpc.pb.go (service, protoc-gen-go-grpc).
# Both plugins are the pinned `tool` lines of hack/tools/gen/go.mod; protoc is the system one.
# The generated headers name the protoc version, so the committed files match only when generated
# with the same protoc (PROTOC_VERSION below). Running it twice changes nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"

PROTOC_VERSION=3.21.12
proto_dir=pkg/cni/cnipb

command -v protoc >/dev/null || die "protoc not found: install the protobuf-compiler package"
have=$(protoc --version | awk '{print $2}')
if [ "$have" != "$PROTOC_VERSION" ]; then
	log "warning: protoc $have differs from $PROTOC_VERSION; only the version line in the generated headers should change"
fi

# `go tool -n` builds the plugin in the tools module and prints its path.
tool() { go -C "$here/tools/gen" tool -n "$1"; }

log "protobuf ($proto_dir)"
protoc \
	--proto_path="$proto_dir" \
	--plugin=protoc-gen-go="$(tool protoc-gen-go)" \
	--plugin=protoc-gen-go-grpc="$(tool protoc-gen-go-grpc)" \
	--go_out="$proto_dir" --go_opt=paths=source_relative \
	--go-grpc_out="$proto_dir" --go-grpc_opt=paths=source_relative \
	"$proto_dir"/cni.proto
