#!/usr/bin/env bash
# The project's whole test run on the real stack:
#   hack/test.sh all   set-up, local cluster up, every Go test (unit and real-stack) against it,
#                      fuzzing, cluster down, and a check that the teardown left nothing behind
#   hack/test.sh e2e   the same without fuzzing, only the real-stack packages (test/e2e)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"
mode=${1:-all}

"$here/setup.sh"
"$here/build-tools.sh" >/dev/null
make --no-print-directory build

cluster_down() { "$here/local-cluster.sh" down || true; }
trap cluster_down EXIT
"$here/local-cluster.sh" up
export PODVLAN_CLUSTER_ENV=$REPO_ROOT/_output/local-cluster/env
# The agent and controller images, imported into the cluster's containerd for the manifests' e2e.
"$here/images.sh"
# The Open vSwitch image of antrea-with-ovs.yml, and its check outside the cluster.
"$here/ovs-image.sh"
CONTAINERD_SOCK=$(sed -n 's/^CONTAINERD_SOCK=//p' "$PODVLAN_CLUSTER_ENV") "$here/ovs-image-check.sh"

rc=0
case "$mode" in
all) go test -count=1 -p 1 -timeout 40m ./... || rc=$? ;;
e2e) go test -count=1 -p 1 -timeout 40m -v ./test/e2e/... || rc=$? ;;
*) die "unknown mode $mode (all|e2e)" ;;
esac

if [ "$mode" = all ]; then
	"$here/fuzz.sh" "${FUZZTIME:-10s}" || rc=1
fi

trap - EXIT
if "$here/local-cluster.sh" down --check; then
	log "teardown left nothing behind"
else
	log "error: the local cluster is still (partly) there after down"
	rc=1
fi
exit $rc
