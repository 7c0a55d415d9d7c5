#!/usr/bin/env bash
# The main job on one machine, end to end: a local cluster, the images built and imported, the
# manifests applied and the feature gates turned on the way a user does it, two VLAN networks with
# IPPools, Pods on the real node (started by the kubelet) and on a simulated node (an agent process
# and a sandbox made by hack/sandbox), then what they got, a ping matrix and tagged frames.
# KEEP=1 leaves everything running (remove it with `make cluster-down`).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"

"$here/setup.sh"
"$here/build-tools.sh" >/dev/null
make --no-print-directory build manifests >/dev/null
go build -o bin/sandbox ./hack/sandbox

agent_pid=""
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null || true
	[ "${KEEP-0}" = 1 ] || "$here/local-cluster.sh" down
}
trap cleanup EXIT
"$here/local-cluster.sh" up
# KEY=value lines, values unquoted (NODES holds spaces): read them, do not source them.
while IFS='=' read -r key value; do
	[[ "$key" =~ ^[A-Z0-9_]+$ ]] && export "$key=$value"
done <_output/local-cluster/env
k() { "$KUBECTL" --kubeconfig "$KUBECONFIG" "$@"; }
say() { printf '\n== %s\n' "$*"; }

say "Images and manifests"
"$here/images.sh" >/dev/null
k apply -f build/yamls/antrea.yml >/dev/null
k -n kube-system rollout status daemonset/antrea-agent --timeout=180s

say "Turning the gates on in the antrea-config ConfigMap (userspace datapath, bridge br-secondary, uplink eth1)"
conf=$(k -n kube-system get configmap antrea-config -o jsonpath='{.data.antrea-agent\.conf}')
conf=$(printf '%s\n' "$conf" | sed -e 's/SecondaryNetwork: false/SecondaryNetwork: true/' \
	-e 's/AntreaIPAM: false/AntreaIPAM: true/' -e 's/ovsDatapathType: system/ovsDatapathType: netdev/' \
	-e 's/^  ovsBridges: \[\]/  ovsBridges:\n  - bridgeName: br-secondary\n    physicalInterfaces: [eth1]/')
ctrl=$(k -n kube-system get configmap antrea-config -o jsonpath='{.data.antrea-controller\.conf}' | sed 's/AntreaIPAM: false/AntreaIPAM: true/')
k -n kube-system create configmap antrea-config --from-literal=antrea-agent.conf="$conf" \
	--from-literal=antrea-controller.conf="$ctrl" --dry-run=client -o yaml | k apply -f - >/dev/null
k -n kube-system rollout restart daemonset/antrea-agent deployment/antrea-controller >/dev/null
k -n kube-system rollout status daemonset/antrea-agent --timeout=180s
k -n kube-system rollout status deployment/antrea-controller --timeout=180s

say "An agent for the simulated node-2 (no kubelet there: a process in its network namespace)"
rm -rf _output/demo
mkdir -p _output/demo
printf '%s\n' "$conf" | sed "s|cniSocket: .*|cniSocket: $REPO_ROOT/_output/demo/node-2.sock|; s|ovsRunDir: .*|ovsRunDir: $NODE_2_OVS_DIR/run|" >_output/demo/node-2-agent.conf
ip netns exec "$NODE_2_NETNS" bin/antrea-agent --config _output/demo/node-2-agent.conf --node-name "$NODE_2_NAME" \
	--kubeconfig "$KUBECONFIG" >_output/demo/node-2-agent.log 2>&1 &
agent_pid=$!

say "Networks: IPPools, NetworkAttachmentDefinitions (docs/examples)"
for f in namespaces ippools networks; do k apply -f "docs/examples/$f.yaml"; done
for ns in demo networks; do
	k -n "$ns" get serviceaccount default >/dev/null 2>&1 || k -n "$ns" create serviceaccount default >/dev/null
done

say "Pods on node-1 (kubelet + containerd call the antrea plugin chained after the primary network)"
k apply -f docs/examples/pod-networks-json.yaml
k apply -f docs/examples/pod-networks-shorthand.yaml
for _ in $(seq 120); do
	[ -S _output/demo/node-2.sock ] && break
	sleep 0.5
done
say "Pods on node-2 (hack/sandbox plays the container runtime)"
sandboxes=()
for p in far100:vlan100 far200:networks/vlan200@eth1; do
	name=${p%%:*} nets=${p#*:}
	k -n demo run "$name" --image=none --overrides="{\"spec\":{\"nodeName\":\"$NODE_2_NAME\"}}" \
		--annotations="k8s.v1.cni.cncf.io/networks=$nets" --restart=Never >/dev/null
	uid=$(k -n demo get pod "$name" -o jsonpath='{.metadata.uid}')
	bin/sandbox add -node-netns "$NODE_2_NETNS" -socket "$REPO_ROOT/_output/demo/node-2.sock" -pod "demo/$name" -uid "$uid" \
		-netns "pv-demo-$name" -bin bin -state _output/demo/sandbox >/dev/null
	sandboxes+=("$name")
done
k -n demo wait --for=condition=Ready pod/multi-vlan pod/shorthand --timeout=180s >/dev/null

say "What each Pod got"
addr() { # pod ifname -> IPv4 address
	case "$1" in
	far*) ip -n "pv-demo-$1" -4 -o addr show dev "$2" | awk '{print $4}' | cut -d/ -f1 ;;
	*) k -n demo exec "$1" -- ip -4 -o addr show dev "$2" | awk '{print $4}' | cut -d/ -f1 ;;
	esac
}
run_in() { # pod command...
	local pod=$1
	shift
	case "$pod" in
	far*) ip netns exec "pv-demo-$pod" "$@" ;;
	*) k -n demo exec "$pod" -- "$@" ;;
	esac
}
declare -A ADDR
for spec in multi-vlan:eth1:100 multi-vlan:eth200:200 shorthand:eth200:200 far100:eth1:100 far200:eth1:200; do
	IFS=: read -r pod ifn vlan <<<"$spec"
	ADDR[$pod/$ifn]=$(addr "$pod" "$ifn")
	printf '  %-12s %-7s VLAN %-4s %s\n' "$pod" "$ifn" "$vlan" "${ADDR[$pod/$ifn]}"
done
k -n demo get pod multi-vlan -o jsonpath='{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}'
echo

say "Ping matrix (rows ping columns; VLAN 100 and VLAN 200 never meet)"
targets=(multi-vlan/eth1 far100/eth1 ext100 multi-vlan/eth200 shorthand/eth200 far200/eth1 ext200)
declare -A TIP=([ext100]=$EXT100_IP [ext200]=$EXT200_IP)
for t in "${targets[@]}"; do [ -n "${TIP[$t]-}" ] || TIP[$t]=${ADDR[$t]}; done
printf '%-18s' ""
for t in "${targets[@]}"; do printf '%-17s' "$t"; done
echo
for from in multi-vlan far100 shorthand far200; do
	printf '%-18s' "$from"
	for t in "${targets[@]}"; do
		if [[ "$t" == "$from/"* ]]; then printf '%-17s' "-"; continue; fi
		if run_in "$from" ping -c 1 -W 1 "${TIP[$t]}" >/dev/null 2>&1; then printf '%-17s' "ok"; else printf '%-17s' "x"; fi
	done
	echo
done

say "Frames on node-1's uplink, seen from the fabric (802.1Q tags)"
ip netns exec "$FABRIC_NETNS" timeout 4 tcpdump -l -e -nn -i "$NODE_1_FABRIC_PORT" -Q in -c 4 icmp 2>/dev/null &
sleep 1.5
run_in multi-vlan ping -c 2 -W 1 "$EXT100_IP" >/dev/null 2>&1 || true
run_in shorthand ping -c 2 -W 1 "$EXT200_IP" >/dev/null 2>&1 || true
wait $! 2>/dev/null || true

say "Cleaning up the node-2 sandboxes"
for name in "${sandboxes[@]}"; do
	uid=$(k -n demo get pod "$name" -o jsonpath='{.metadata.uid}')
	bin/sandbox del -node-netns "$NODE_2_NETNS" -socket "$REPO_ROOT/_output/demo/node-2.sock" -pod "demo/$name" -uid "$uid" -netns "pv-demo-$name" -bin bin -state _output/demo/sandbox || true
	k -n demo delete pod "$name" --grace-period=0 --force >/dev/null 2>&1 || true
done
if [ "${KEEP-0}" = 1 ]; then
	say "KEEP=1: the cluster stays up; env in _output/local-cluster/env; remove it with make cluster-down"
fi
