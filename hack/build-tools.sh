#!/usr/bin/env bash
# Builds the pinned kube-apiserver, kubectl, kubelet, etcd and etcdctl, and the Multus thin plugin
# for the e2e tests, from hack/tools/* into a cache outside the checkout, keyed by version, and
# reuses it when every binary is already there. Prints the bin directory on stdout; progress goes to
# stderr, one line every 30 seconds (HEARTBEAT), and the builds' own output (module downloads,
# compiler messages) to _output/logs/build-tools-*.log, whose last lines are shown on failure.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

bin=$(tools_bin_dir)
want=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet etcd etcdctl multus)
# The peers the benchmarks measure beside the agent (hack/bench/).
want+=(ovs whereabouts)
all_there() {
	for b in "${want[@]}"; do [ -x "$bin/$b" ] || return 1; done
}
there() {
	for b in "$@"; do [ -x "$bin/$b" ] || return 1; done
}
if all_there; then echo "$bin"; exit 0; fi

mkdir -p "$bin"
# One build at a time: a second caller waits for the first and then finds everything there.
exec 9>"$bin/.lock"
flock 9
if all_there; then echo "$bin"; exit 0; fi
tmp=$(mktemp -d "$bin/.build.XXXXXX")
logs=$REPO_ROOT/_output/logs
trap 'rm -rf "$tmp"' EXIT
t0=$(date +%s)
minor=$(echo "$K8S_VERSION" | cut -d. -f2)
ldf="-s -w -X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1"
ldf="$ldf -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
ldf="$ldf -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
# Each group is built only when one of its binaries is missing, so that adding a tool does not
# rebuild the others.
if ! there kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet; then
	log "building Kubernetes $K8S_VERSION tools into $bin (about 8 minutes on a cold 2-core machine)"
	run_logged "$logs/build-tools-k8s.log" "Kubernetes $K8S_VERSION tools" \
		go -C "$here/tools/k8s" build -trimpath -ldflags "$ldf" -o "$tmp/" \
		k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
		k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet >&2
fi
if ! there etcd etcdctl; then
	run_logged "$logs/build-tools-etcd.log" "etcd $ETCD_VERSION" \
		bash -c 'cd "$1" && go build -trimpath -ldflags "-s -w" -o "$2/etcd" go.etcd.io/etcd/server/v3 &&
			go build -trimpath -ldflags "-s -w" -o "$2/etcdctl" go.etcd.io/etcd/etcdctl/v3' _ "$here/tools/etcd" "$tmp" >&2
fi
if ! there multus; then
	run_logged "$logs/build-tools-multus.log" \
		"the Multus thin plugin $(sed -n 's/^.*multus-cni.v4 \(v[^ ]*\).*$/\1/p' "$here/tools/multus/go.mod")" \
		go -C "$here/tools/multus" build -trimpath -ldflags "-s -w" -o "$tmp/multus" \
		gopkg.in/k8snetworkplumbingwg/multus-cni.v4/cmd/multus >&2
fi
# The peers' plugins for the benchmarks: ovs-cni's plugin (CNI type "ovs") and Whereabouts.
if ! there ovs; then
	log "building the ovs-cni plugin $(sed -n 's/^require .*ovs-cni \(v[^ ]*\)$/\1/p' "$here/tools/ovs-cni/go.mod")"
	(cd "$here/tools/ovs-cni" && go build -trimpath -ldflags "-s -w" -o "$tmp/ovs" \
		github.com/k8snetworkplumbingwg/ovs-cni/cmd/plugin) >&2
fi
if ! there whereabouts; then
	log "building Whereabouts $(sed -n 's/^require .*whereabouts \(v[^ ]*\)$/\1/p' "$here/tools/whereabouts/go.mod")"
	(cd "$here/tools/whereabouts" && go build -trimpath -ldflags "-s -w" -o "$tmp/whereabouts" \
		github.com/k8snetworkplumbingwg/whereabouts/cmd) >&2
fi
mv "$tmp"/* "$bin/"
log "tools ready in $(( $(date +%s) - t0 ))s"
echo "$bin"
