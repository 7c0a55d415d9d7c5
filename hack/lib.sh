# Shared settings and helpers for the hack/ scripts; sourced, never run.
K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
PROJECT=podvlan
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Binaries are cached outside the checkout so that fresh clones on the same machine reuse them.
tools_bin_dir() {
	local base=${PODVLAN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/$PROJECT/tools}
	echo "$base/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
}
