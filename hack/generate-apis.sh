#!/usr/bin/env bash
# Generates everything derived from the IPPool API types in pkg/apis/crd/v1beta1:
#   - deepcopy functions (zz_generated.deepcopy.go),
#   - the typed clientset, listers and informers under pkg/client/,
#   - the CRD manifest build/yamls/crds/ippool.yaml (schema from the +kubebuilder markers).
# The generators are the pinned `tool` lines of hack/tools/gen/go.mod. Running it twice changes nothing.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"

module=github.com/podvlan/podvlan
apis_pkg=$module/pkg/apis/crd/v1beta1
client_pkg=$module/pkg/client
header=$here/boilerplate.go.txt

# `go tool -n` builds the tool in the tools module and prints its path, so that the generators run
# here, in the product module, where they resolve our packages.
tool() { go -C "$here/tools/gen" tool -n "$1"; }

log "deepcopy"
"$(tool deepcopy-gen)" --go-header-file "$header" --output-file zz_generated.deepcopy.go "$apis_pkg"

# Client code is regenerated from scratch so that files of removed types do not linger.
rm -rf pkg/client
log "clientset"
"$(tool client-gen)" --go-header-file "$header" --clientset-name versioned \
	--input-base "$module/pkg/apis" --input crd/v1beta1 \
	--output-pkg "$client_pkg/clientset" --output-dir pkg/client/clientset
log "listers"
"$(tool lister-gen)" --go-header-file "$header" \
	--output-pkg "$client_pkg/listers" --output-dir pkg/client/listers "$apis_pkg"
log "informers"
"$(tool informer-gen)" --go-header-file "$header" \
	--versioned-clientset-package "$client_pkg/clientset/versioned" \
	--listers-package "$client_pkg/listers" \
	--output-pkg "$client_pkg/informers" --output-dir pkg/client/informers "$apis_pkg"

log "CRD manifest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$(tool controller-gen)" crd paths=./pkg/apis/... output:crd:dir="$tmp"
mkdir -p build/yamls/crds
mv "$tmp/crd.antrea.io_ippools.yaml" build/yamls/crds/ippool.yaml
mv "$tmp/crd.antrea.io_ippoolblocks.yaml" build/yamls/crds/ippoolblock.yaml
