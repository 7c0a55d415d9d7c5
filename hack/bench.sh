#!/usr/bin/env bash
# Runs every benchmark program under hack/bench/ (each prints its figures and writes JSON under
# _output/bench/). Programs that need the local cluster get it through PODVLAN_CLUSTER_ENV.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"

"$here/setup.sh"
"$here/build-tools.sh" >/dev/null
mkdir -p _output/bench
started_cluster=0
if [ -z "${PODVLAN_CLUSTER_ENV-}" ]; then
	trap '[ $started_cluster = 1 ] && "$here/local-cluster.sh" down' EXIT
	"$here/local-cluster.sh" up
	started_cluster=1
	export PODVLAN_CLUSTER_ENV=$REPO_ROOT/_output/local-cluster/env
fi
for b in hack/bench/*/; do
	name=$(basename "$b")
	[ -n "${BENCH-}" ] && [ "$BENCH" != "$name" ] && continue
	log "benchmark $name"
	go run "./$b"
done
