#!/usr/bin/env bash
# The main job on one machine: a local cluster with VLAN secondary networks working end to end.
# KEEP=1 leaves the cluster running afterwards (tear it down with `make cluster-down`).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"

"$here/setup.sh"
"$here/build-tools.sh" >/dev/null
make --no-print-directory build
[ "${KEEP-0}" = 1 ] || trap '"$here/local-cluster.sh" down' EXIT
"$here/local-cluster.sh" up
"$here/local-cluster.sh" status
