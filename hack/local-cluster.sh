#!/usr/bin/env bash
# A real Kubernetes cluster on one machine, with a VLAN-capable "physical" network, for end-to-end tests
# and the demo. Needs root.
#
#   hack/local-cluster.sh up [--nodes N]   start everything (N >= 1 nodes, default 2); already up: exit 0
#   hack/local-cluster.sh status           what runs and what is left over; exit 0 only when fully up,
#                                          3 when nothing at all is left, 1 otherwise
#   hack/local-cluster.sh down [--check]   remove everything `up` made (safe to repeat); with --check,
#                                          then fail unless nothing is left behind
#
# What `up` makes:
#   management     a Linux bridge pv-mgmt in the root network namespace holding node-1's address
#   network        198.18.0.1/24, as the network a real cluster's nodes use to reach the API server
#   control plane  etcd on 127.0.0.1 and kube-apiserver on https://198.18.0.1:6443 (hack/control-plane.sh),
#                  RBAC + Node authorizer, the `kubernetes` Service's endpoint kept by the apiserver
#                  (lease reconciler), webhooks called at their Service's endpoint (aggregator routing)
#   controllers    kube-controller-manager with what DaemonSets and Deployments need (daemonset,
#                  deployment, replicaset, namespace, serviceaccount-token, root CA publisher,
#                  endpointslice, garbage collector; no serviceaccount controller: tests make their
#                  namespaces' default ServiceAccount) and kube-scheduler, each with its own identity
#   service proxy  no kube-proxy: an nftables table podvlan-services DNATs the `kubernetes` Service
#                  (10.96.0.1:443) to the apiserver (198.18.0.1:6443), for Pods on the pod network
#                  (prerouting) and on the host network (output) of node-1
#   node-1         a REAL node in the root network namespace: containerd + runc, a kubelet with its own
#                  client and serving certificates (so `kubectl logs/exec` work), the primary CNI config
#                  list (bridge + host-local) in /etc/cni/net.d, the reference plugins in /opt/cni/bin,
#                  locally built pause and test images, and a private Open vSwitch whose run directory
#                  is linked from /var/run/openvswitch, where the agent DaemonSet finds db.sock
#   node-2..N      simulated nodes: a network namespace podvlan-node-K with a private Open vSwitch, a
#                  management interface eth0 (198.18.0.K/24, default route via 198.18.0.1; a veth whose
#                  peer mgmt-node-K is a port of pv-mgmt) and a Node object whose status says Ready,
#                  tainted podvlan.dev/simulated=true:NoSchedule: no kubelet runs for it, so no
#                  DaemonSet Pod (the agent's) and no scheduled Pod may land there
#   kubeconfigs    node-K/agent.kubeconfig for every node: user system:node:node-K (group system:nodes)
#                  at the management address, usable from inside the node's namespace
#   fabric         an OVS bridge br-fabric in namespace podvlan-fabric playing the top-of-rack switch:
#                  every node's uplink eth1 (a veth) is a trunk port on it; external hosts sit on access
#                  ports: podvlan-ext100 (198.18.100.254/24, VLAN 100), podvlan-ext200 (198.18.200.254/24)
#
# State, logs, pidfiles and certificates live in _output/local-cluster/; the env file there
# (KEY=value lines, no quotes) tells tests and scripts where everything is.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

DIR=$REPO_ROOT/_output/local-cluster
ENV_FILE=$DIR/env
CP_DIR=$DIR/control-plane
IMG_DIR=$DIR/images
FABRIC_DIR=$DIR/fabric

FABRIC_NETNS=$PROJECT-fabric
FABRIC_BRIDGE=br-fabric
EXT_VLANS=(100 200)
UPLINK=eth1
UPLINK_ALIAS="$PROJECT uplink of node-1"
# The management network. Its links in the root namespace carry MGMT_ALIAS, so that `down` and
# `status` only ever touch links this script made.
MGMT_BRIDGE=pv-mgmt
MGMT_ALIAS="$PROJECT management network"
MGMT_IF=eth0
MGMT_PREFIX=24
NODE_NETNS_PREFIX=$PROJECT-node-
REAL_NODE=node-1
SIMULATED_TAINT_KEY=$PROJECT.dev/simulated
SIMULATED_TAINT=$SIMULATED_TAINT_KEY=true:NoSchedule

# kube-controller-manager runs only the controllers the project's DaemonSet and Deployment need.
CONTROLLERS_DIR=$DIR/controllers
KCM_CONTROLLERS=daemonset-controller,deployment-controller,replicaset-controller,namespace-controller
KCM_CONTROLLERS+=,serviceaccount-token-controller,root-ca-certificate-publisher-controller
KCM_CONTROLLERS+=,endpointslice-controller,garbage-collector-controller
# What kube-proxy would do for the one Service Pods need: the API server's.
KUBERNETES_SERVICE_IP=10.96.0.1
KUBERNETES_SERVICE_PORT=443
SERVICES_TABLE=$PROJECT-services
# Where Open vSwitch has its sockets on a real node; node-1's private OVS is linked there.
OVS_RUN_LINK=/var/run/openvswitch

# The standard CNI locations, where containerd looks and where the agent installs its plugin binary and
# chains itself into the primary config list, as on any Kubernetes node.
CNI_CONF_DIR=/etc/cni/net.d
CNI_BIN_DIR=/opt/cni/bin
CNI_NETWORK=$PROJECT
CNI_CONFLIST=$CNI_CONF_DIR/10-$PROJECT.conflist
CNI_BRIDGE=cni0
CNI_PLUGIN_SRC=${CNI_PLUGIN_SRC:-/usr/lib/cni}
KUBELET_PORT=10250
KUBELET_HEALTHZ_PORT=10248

# Paths the kubelet, containerd and libcni write whatever their configuration says. `up` records which
# of them did not exist before, and `down` removes exactly those.
HARDCODED_PATHS=(/var/lib/kubelet /var/lib/cni /var/log/containers /var/log/pods /run/containerd
	/etc/cni /etc/cni/net.d /opt/cni /opt/cni/bin
	/opt/cni/bin/antrea /var/run/antrea "$OVS_RUN_LINK")
# (The last three are the agent DaemonSet's: the plugin binary its install step copies, the CNI
# socket's directory, and the link to node-1's OVS run directory that `up` makes.)

node_name() { echo "node-$1"; }
node_dir() { echo "$DIR/node-$1"; }
node_netns() { if [ "$1" = 1 ]; then echo ""; else echo "$NODE_NETNS_PREFIX$1"; fi; }
# Node addresses and pod subnets are test addresses that never leave the machine.
node_ip() { echo "198.18.0.$1"; }
pod_cidr() { echo "10.244.$1.0/24"; }
fabric_port() { echo "fab-node-$1"; }
mgmt_port() { echo "mgmt-node-$1"; }
# node_mgmt_if K: the interface holding the node's address; node-1's is the bridge itself.
node_mgmt_if() { if [ "$1" = 1 ]; then echo "$MGMT_BRIDGE"; else echo "$MGMT_IF"; fi; }
node_kubeconfig() { echo "$(node_dir "$1")/agent.kubeconfig"; }
ext_netns() { echo "$PROJECT-ext$1"; }
ext_ip() { echo "198.18.$1.254"; }
ext_port() { echo "ext$1"; }

# The API server listens on node-1's management address only: reachable from every node's namespace
# and from the root namespace, and not on the machine's own network. etcd stays on 127.0.0.1.
KAPI_ADDR=$(node_ip 1)
KAPI_PORT=${KAPI_PORT:-6443}
APISERVER=https://$KAPI_ADDR:$KAPI_PORT

containerd_dir() { echo "$(node_dir 1)/containerd"; }
kubelet_dir() { echo "$(node_dir 1)/kubelet"; }
containerd_sock() { echo "$(containerd_dir)/containerd.sock"; }

in_netns() { # NETNS CMD...: run CMD in NETNS, or in the root namespace when NETNS is empty
	local ns=$1
	shift
	if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

# phase logs a step with the time since the command started (PHASES=1).
phase() {
	[ "${PHASES:-0}" = 1 ] && log "$(awk -v now="$EPOCHREALTIME" -v t0="$T_START" 'BEGIN { printf "%5.1fs", now - t0 }') $*"
	return 0
}
T_START=$EPOCHREALTIME

alive() { [ -f "$1" ] && running "$(cat "$1")"; }

# start_daemon PIDFILE LOG CMD...: CMD in a session of its own (so that signals sent to the caller's
# process group do not reach it), writing its own pid before it execs.
start_daemon() {
	local pidfile=$1 logfile=$2
	shift 2
	rm -f "$pidfile"
	setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >"$logfile" 2>&1 </dev/null 9>&- &
	for _ in $(seq 50); do [ -s "$pidfile" ] && return 0; sleep 0.02; done
	die "$* did not start"
}

tools_bin() {
	if [ -f "$CP_DIR/env" ]; then sed -n 's/^TOOLS_BIN=//p' "$CP_DIR/env"; else tools_bin_dir; fi
}

kc() { "$(tools_bin)/kubectl" --kubeconfig "$CP_DIR/kubeconfig" --request-timeout=20s "$@"; }

apiserver_up() { [ -f "$CP_DIR/kubeconfig" ] && kc get --raw /readyz >/dev/null 2>&1; }

ctr_() { ctr --address "$(containerd_sock)" --namespace k8s.io "$@"; }

ovs_sock() { echo "unix:$1/run/db.sock"; }

vsctl() { # OVS_DIR ARGS...
	local d=$1
	shift
	ovs-vsctl --db="$(ovs_sock "$d")" --timeout=30 "$@"
}

netns_exists() { [ -e "/run/netns/$1" ]; }

# output_has TEXT CMD...: CMD's output contains TEXT. (Not `CMD | grep -q`: with pipefail, grep exiting
# at the first match can fail the pipeline through SIGPIPE.)
output_has() { [[ $("${@:2}" 2>/dev/null || true) == *"$1"* ]]; }

# port_taken ADDR PORT: something listens on TCP PORT at ADDR or at a wildcard address.
port_taken() {
	ss -Hltn "sport = :$2" 2>/dev/null | awk -v want="$1:$2" -v port="$2" \
		'$4 == want || $4 == "0.0.0.0:" port || $4 == "*:" port || $4 == "[::]:" port { found = 1 } END { exit !found }'
}

# The rest, by concern; the pieces share this script's variables and helpers.
# shellcheck source=cluster/net.sh
. "$here/cluster/net.sh"
# shellcheck source=cluster/kube.sh
. "$here/cluster/kube.sh"
# shellcheck source=cluster/down.sh
. "$here/cluster/down.sh"
# shellcheck source=cluster/status.sh
. "$here/cluster/status.sh"

######################################################################################################
# up
######################################################################################################

preflight() {
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces, veths, Open vSwitch, kubelet)"
	local missing=()
	for c in containerd containerd-shim-runc-v2 runc ctr ovs-vsctl ovsdb-server ovs-vswitchd ip openssl curl \
		gcc setsid sysctl ss jq flock nft; do
		command -v "$c" >/dev/null || missing+=("$c")
	done
	[ -x "$CNI_PLUGIN_SRC/bridge" ] && [ -x "$CNI_PLUGIN_SRC/host-local" ] && [ -x "$CNI_PLUGIN_SRC/loopback" ] ||
		missing+=("CNI plugins in $CNI_PLUGIN_SRC (containernetworking-plugins)")
	[ ${#missing[@]} = 0 ] || die "missing: ${missing[*]} (hack/setup.sh installs them)"
	if ip link show "$UPLINK" >/dev/null 2>&1 && ! our_uplink_exists; then
		die "a link named $UPLINK already exists in the root network namespace and is not ours"
	fi
	if ip link show "$CNI_BRIDGE" >/dev/null 2>&1; then die "a link named $CNI_BRIDGE already exists"; fi
	if ip link show ovs-netdev >/dev/null 2>&1; then
		die "another userspace ovs-vswitchd owns the root network namespace (link ovs-netdev exists)"
	fi
	if [ -e "$CNI_CONFLIST" ]; then
		local owner
		owner=$(conflist_owner "$CNI_CONFLIST")
		[ -z "$owner" ] || [ "$owner" = "$DIR" ] ||
			die "$CNI_CONFLIST belongs to the local cluster of another checkout ($owner), which is up: take it down there first"
		die "$CNI_CONFLIST already exists and is not this project's: another CNI owns this machine's Pod network"
	fi
	if [ -e "$OVS_RUN_LINK" ] || [ -L "$OVS_RUN_LINK" ]; then
		die "$OVS_RUN_LINK already exists (another Open vSwitch?): node-1's OVS cannot be linked there"
	fi
	if ip link show "$MGMT_BRIDGE" >/dev/null 2>&1; then die "a link named $MGMT_BRIDGE already exists"; fi
	if output_has " $(node_ip 1)/" ip -o -4 addr show; then
		die "address $(node_ip 1) is already assigned in the root network namespace"
	fi
	# Each port is checked where its listener binds, so that other users of the same port numbers on
	# other addresses (a standalone control plane on 127.0.0.1:6443, say) do not get in the way.
	local binding
	for binding in "$KAPI_ADDR:$KAPI_PORT" "127.0.0.1:${ETCD_PORT:-2379}" "127.0.0.1:${ETCD_PEER_PORT:-2380}" \
		"$(node_ip 1):$KUBELET_PORT" "127.0.0.1:$KUBELET_HEALTHZ_PORT"; do
		if port_taken "${binding%:*}" "${binding##*:}"; then die "TCP $binding is already in use"; fi
	done
}

record_host_paths() {
	: >"$DIR/created-host-paths"
	for p in "${HARDCODED_PATHS[@]}"; do [ -e "$p" ] || echo "$p" >>"$DIR/created-host-paths"; done
}

# write_env N: the env file, through hack/clusterenv, which writes it only when every key parses as
# the contract the tests read (internal/teststack.Env).
write_env() {
	local n=$1 bin
	bin=$(tools_bin)
	{
		echo "CLUSTER_DIR=$DIR"
		echo "KUBECONFIG=$CP_DIR/kubeconfig"
		echo "APISERVER=$APISERVER"
		echo "MGMT_BRIDGE=$MGMT_BRIDGE"
		echo "MGMT_CIDR=$(node_ip 0)/$MGMT_PREFIX"
		echo "MGMT_GATEWAY=$(node_ip 1)"
		echo "KUBECTL=$bin/kubectl"
		echo "TOOLS_BIN=$bin"
		echo "NODES=$(for i in $(seq 1 "$n"); do node_name "$i"; done | xargs)"
		echo "NODE_COUNT=$n"
		for i in $(seq 1 "$n"); do
			local d
			d=$(node_dir "$i")
			echo "NODE_${i}_NAME=$(node_name "$i")"
			echo "NODE_${i}_REAL=$([ "$i" = 1 ] && echo true || echo false)"
			echo "NODE_${i}_NETNS=$(node_netns "$i")"
			echo "NODE_${i}_IP=$(node_ip "$i")"
			echo "NODE_${i}_MGMT_IF=$(node_mgmt_if "$i")"
			echo "NODE_${i}_KUBECONFIG=$(node_kubeconfig "$i")"
			echo "NODE_${i}_POD_CIDR=$(pod_cidr "$i")"
			echo "NODE_${i}_OVS_DIR=$d/ovs"
			echo "NODE_${i}_OVSDB=$(ovs_sock "$d/ovs")"
			echo "NODE_${i}_UPLINK=$UPLINK"
			echo "NODE_${i}_FABRIC_PORT=$(fabric_port "$i")"
		done
		echo "WORKLOAD_CONTROLLERS=$KCM_CONTROLLERS"
		echo "SIMULATED_NODE_TAINT=$SIMULATED_TAINT"
		echo "KUBERNETES_SERVICE=$KUBERNETES_SERVICE_IP:$KUBERNETES_SERVICE_PORT"
		echo "OVS_RUN_LINK=$OVS_RUN_LINK"
		echo "CNI_CONF_DIR=$CNI_CONF_DIR"
		echo "CNI_CONFLIST=$CNI_CONFLIST"
		echo "CNI_NETWORK=$CNI_NETWORK"
		echo "CNI_BIN_DIR=$CNI_BIN_DIR"
		echo "CNI_BRIDGE=$CNI_BRIDGE"
		echo "CONTAINERD_SOCK=$(containerd_sock)"
		echo "CONTAINERD_NAMESPACE=k8s.io"
		echo "KUBELET_LOG=$(kubelet_dir)/kubelet.log"
		echo "CONTAINERD_LOG=$(containerd_dir)/containerd.log"
		echo "FABRIC_NETNS=$FABRIC_NETNS"
		echo "FABRIC_BRIDGE=$FABRIC_BRIDGE"
		echo "FABRIC_OVS_DIR=$FABRIC_DIR/ovs"
		echo "FABRIC_OVSDB=$(ovs_sock "$FABRIC_DIR/ovs")"
		for v in "${EXT_VLANS[@]}"; do
			echo "EXT${v}_NETNS=$(ext_netns "$v")"
			echo "EXT${v}_IP=$(ext_ip "$v")"
			echo "EXT${v}_CIDR=$(ext_ip "$v")/24"
			echo "EXT${v}_VLAN=$v"
			echo "EXT${v}_FABRIC_PORT=$(ext_port "$v")"
		done
		cat "$IMG_DIR/images.env"
	} | (cd "$REPO_ROOT" && go run ./hack/clusterenv -o "$ENV_FILE")
}

cmd_up() {
	local n=2
	while [ $# -gt 0 ]; do
		case "$1" in
		--nodes) n=${2:?--nodes needs a number}; shift 2 ;;
		--nodes=*) n=${1#--nodes=}; shift ;;
		*) die "unknown flag $1 (usage: local-cluster.sh up [--nodes N])" ;;
		esac
	done
	[[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "--nodes must be between 1 and 200"
	[ "$(id -u)" = 0 ] || die "needs root (network namespaces, veths, Open vSwitch, kubelet)"
	if check_up >/dev/null 2>&1; then
		[ "$(cat "$DIR/nodes")" = "$n" ] || log "note: the running cluster has $(cat "$DIR/nodes") nodes, not $n"
		log "already up"
		summary
		return 0
	fi
	if [ -n "$(leftovers)" ]; then
		log "a previous cluster is partly up or left things behind: taking it down first"
		cmd_down
	fi
	preflight
	local t0=$SECONDS
	mkdir -p "$DIR"
	record_host_paths
	# shellcheck disable=SC2154 # rc is assigned inside the trap
	trap 'rc=$?; [ "$rc" = 0 ] || log "up failed: logs are under $DIR; hack/local-cluster.sh down cleans up and keeps them in _output/logs/"' EXIT

	"$here/build-tools.sh" >/dev/null
	up_mgmt_network
	# The images build (about a second) while the control plane starts.
	"$here/node-images.sh" "$IMG_DIR" 2>"$DIR/node-images.log" &
	local images_pid=$!
	KAPI_BIND=$KAPI_ADDR KAPI_ADVERTISE=$KAPI_ADDR KAPI_EXTRA_SANS=$KAPI_ADDR KAPI_PORT=$KAPI_PORT \
		"$here/control-plane.sh" up "$CP_DIR" 9>&-
	wait "$images_pid" || { cat "$DIR/node-images.log" >&2; die "building the node images failed"; }
	up_workload_controllers
	up_service_proxy

	up_fabric
	for i in $(seq 1 "$n"); do up_node_network "$i"; done
	ln -s "$(node_dir 1)/ovs/run" "$OVS_RUN_LINK"
	echo "$n" >"$DIR/nodes"
	for i in $(seq 1 "$n"); do write_agent_kubeconfig "$i"; done

	install_cni
	up_containerd
	up_kubelet
	for i in $(seq 2 "$n"); do up_simulated_node "$i"; done
	# No serviceaccount controller runs: give the default namespace its ServiceAccount, one that does
	# not ask for a token volume.
	kc apply -f - >/dev/null <<S
apiVersion: v1
kind: ServiceAccount
metadata: {name: default, namespace: default}
automountServiceAccountToken: false
S
	wait_workload_controllers
	write_env "$n"
	trap - EXIT
	log "up in $((SECONDS - t0))s"
	summary
}

summary() {
	local n
	n=$(cat "$DIR/nodes")
	cat <<S
Local cluster is up ($n node(s)); details in $ENV_FILE
  kubectl:    $(tools_bin)/kubectl --kubeconfig $CP_DIR/kubeconfig get nodes
  API server: $APISERVER, on the management bridge $MGMT_BRIDGE ($(node_ip 0)/$MGMT_PREFIX);
              Service kubernetes ($KUBERNETES_SERVICE_IP:$KUBERNETES_SERVICE_PORT) DNAT'ed to it by nftables table $SERVICES_TABLE
  controllers: kube-controller-manager ($KCM_CONTROLLERS), kube-scheduler
S
	for i in $(seq 1 "$n"); do
		if [ "$i" = 1 ]; then
			printf '  %-10s  real node (kubelet + containerd), root netns, %s on %s, OVSDB %s, uplink %s\n' \
				"$(node_name 1)" "$(node_ip 1)" "$MGMT_BRIDGE" "$(ovs_sock "$(node_dir 1)/ovs")" "$UPLINK"
		else
			printf '  %-10s  simulated node, netns %s, %s on %s, OVSDB %s, uplink %s\n' \
				"$(node_name "$i")" "$(node_netns "$i")" "$(node_ip "$i")" "$MGMT_IF" \
				"$(ovs_sock "$(node_dir "$i")/ovs")" "$UPLINK"
		fi
	done
	echo "  agent kubeconfigs: $DIR/node-K/agent.kubeconfig (user system:node:node-K)"
	echo "  simulated nodes are tainted $SIMULATED_TAINT; $OVS_RUN_LINK links to node-1's OVS run directory"
	printf '  %-10s  %s in netns %s; every uplink is a trunk port on it\n' fabric "$FABRIC_BRIDGE" "$FABRIC_NETNS"
	for v in "${EXT_VLANS[@]}"; do
		printf '  %-10s  external host %s/24 on VLAN %s (netns %s)\n' "ext$v" "$(ext_ip "$v")" "$v" "$(ext_netns "$v")"
	done
	echo "  test image: $(sed -n 's/^TEST_IMAGE=//p' "$IMG_DIR/images.env") (imagePullPolicy: Never)"
}

# One up or down at a time; the lock lives outside the state directory, which down removes. Daemons
# must not inherit its descriptor (9), or they would hold the lock for as long as they run.
lock() {
	mkdir -p "$(dirname "$DIR")"
	exec 9>"$(dirname "$DIR")/.local-cluster.lock"
	flock -w 600 9 || die "another hack/local-cluster.sh up/down holds $(dirname "$DIR")/.local-cluster.lock"
}

case "${1:-}" in
up) shift; lock; cmd_up "$@" ;;
down) shift; lock; cmd_down "$@" ;;
status) shift; cmd_status "$@" ;;
*) die "usage: local-cluster.sh up [--nodes N] | down [--check] | status" ;;
esac
