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

our_uplink_exists() { output_has "alias $UPLINK_ALIAS" ip -o link show "$UPLINK"; }
our_mgmt_bridge_exists() { output_has "alias $MGMT_ALIAS" ip -o link show "$MGMT_BRIDGE"; }
# our_mgmt_ports prints the root-namespace ends of the nodes' management veths.
our_mgmt_ports() {
	ip -o link show 2>/dev/null | awk -v alias="alias $MGMT_ALIAS" \
		'index($0, alias) { name = $2; sub(/@.*/, "", name); sub(/:$/, "", name); if (name ~ /^mgmt-node-[0-9]+$/) print name }'
}
mgmt_bridge_has_node_ip() { output_has " $(node_ip 1)/$MGMT_PREFIX " ip -o addr show dev "$MGMT_BRIDGE"; }
# Clusters started before the management network existed kept node-1's address on lo.
lo_has_node_ip() { output_has " $(node_ip 1)/32 " ip -o addr show dev lo; }

# conflist_owner FILE: the state directory of the local cluster (of any checkout of this project) that
# wrote the primary config list FILE, read from the host-local dataDir it names; empty when FILE is
# not one of ours.
conflist_owner() {
	[ -f "$1" ] || return 0
	local data
	data=$(jq -r --arg name "$CNI_NETWORK" \
		'select(.name == $name) | .plugins[0] | select(.type == "bridge") | .ipam.dataDir // empty' "$1" 2>/dev/null || true)
	if [[ $data == /*/_output/local-cluster/node-1/cni-ipam ]]; then echo "${data%/node-1/cni-ipam}"; fi
	return 0
}

# cluster_alive DIR: a daemon of the local cluster whose state directory is DIR still runs.
cluster_alive() {
	[ -d "$1" ] || return 1
	local pidfile
	while read -r pidfile; do alive "$pidfile" && return 0; done < <(find "$1" -xdev -name '*.pid' 2>/dev/null)
	return 1
}

# orphaned_host_files prints the files in the machine-wide paths (the primary config list, the link to
# node-1's OVS) that a local cluster of this project made and that nothing of it uses any more: its
# daemons are gone, its state directory may be too (a machine restored from a snapshot, a checkout
# removed while its cluster was up). They belong to no one, so `down` removes them and `up` starts.
orphaned_host_files() {
	local owner target
	owner=$(conflist_owner "$CNI_CONFLIST")
	if [ -n "$owner" ] && ! cluster_alive "$owner"; then echo "$CNI_CONFLIST"; fi
	if [ -L "$OVS_RUN_LINK" ]; then
		target=$(readlink "$OVS_RUN_LINK")
		if [[ $target == /*/_output/local-cluster/node-1/ovs/run ]] && ! cluster_alive "${target%/node-1/ovs/run}"; then
			echo "$OVS_RUN_LINK"
		fi
	fi
	return 0
}

# port_taken ADDR PORT: something listens on TCP PORT at ADDR or at a wildcard address.
port_taken() {
	ss -Hltn "sport = :$2" 2>/dev/null | awk -v want="$1:$2" -v port="$2" \
		'$4 == want || $4 == "0.0.0.0:" port || $4 == "*:" port || $4 == "[::]:" port { found = 1 } END { exit !found }'
}

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

disable_ipv6_in() { # NETNS: no IPv6 chatter (DAD, MLD, RS) from any link of the namespace
	in_netns "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
}

new_netns() {
	ip netns add "$1"
	disable_ipv6_in "$1"
	ip -n "$1" link set lo up
}

ovs_up() { # DIR NETNS: private OVS daemons; their chatter goes to a log unless they fail
	"$here/ovs.sh" up "$1" "$2" 2>>"$DIR/ovs.log" 9>&- || { cat "$DIR/ovs.log" >&2; die "OVS in $1 did not start"; }
}

up_fabric() {
	new_netns "$FABRIC_NETNS"
	ovs_up "$FABRIC_DIR/ovs" "$FABRIC_NETNS"
	vsctl "$FABRIC_DIR/ovs" add-br "$FABRIC_BRIDGE" -- set bridge "$FABRIC_BRIDGE" datapath_type=netdev
	for v in "${EXT_VLANS[@]}"; do
		local ns
		ns=$(ext_netns "$v")
		new_netns "$ns"
		ip link add eth0 netns "$ns" type veth peer name "$(ext_port "$v")" netns "$FABRIC_NETNS"
		ip -n "$ns" addr add "$(ext_ip "$v")/24" dev eth0
		ip -n "$ns" link set eth0 up
		ip -n "$FABRIC_NETNS" link set "$(ext_port "$v")" up
		vsctl "$FABRIC_DIR/ovs" add-port "$FABRIC_BRIDGE" "$(ext_port "$v")" tag="$v"
	done
}

# up_mgmt_network: the management bridge with node-1's address. The API server binds to that address,
# so this comes before the control plane. The kubelet serves on it too.
up_mgmt_network() {
	ip link add "$MGMT_BRIDGE" type bridge
	ip link set "$MGMT_BRIDGE" alias "$MGMT_ALIAS"
	sysctl -qw "net.ipv6.conf.$MGMT_BRIDGE.disable_ipv6=1"
	# Nodes get a default route via node-1, and the root namespace forwards: without this, whatever a
	# node sent to the outside world would leave the machine with a test address as its source. (Best
	# effort: a later change of net.ipv4.ip_forward resets it.)
	sysctl -qw "net.ipv4.conf.$MGMT_BRIDGE.forwarding=0"
	ip addr add "$(node_ip 1)/$MGMT_PREFIX" dev "$MGMT_BRIDGE"
	ip link set "$MGMT_BRIDGE" up
}

# up_mgmt_link K: the simulated node's management interface eth0, a veth whose peer is a port of the
# management bridge, with the node's address and its default route via node-1.
up_mgmt_link() {
	local i=$1 ns port
	ns=$(node_netns "$i")
	port=$(mgmt_port "$i")
	ip link add "$port" type veth peer name "$MGMT_IF" netns "$ns"
	ip link set "$port" alias "$MGMT_ALIAS"
	sysctl -qw "net.ipv6.conf.$port.disable_ipv6=1"
	ip netns exec "$ns" sysctl -qw "net.ipv6.conf.$MGMT_IF.disable_ipv6=1"
	ip link set "$port" master "$MGMT_BRIDGE"
	ip link set "$port" up
	ip -n "$ns" addr add "$(node_ip "$i")/$MGMT_PREFIX" dev "$MGMT_IF"
	ip -n "$ns" link set "$MGMT_IF" up
	ip -n "$ns" route add default via "$(node_ip 1)" dev "$MGMT_IF"
}

# up_node_network K: the node's namespace (not for node-1) with its management interface, its private
# OVS and its uplink eth1, whose peer is a trunk port (every VLAN) on the fabric.
up_node_network() {
	local i=$1 ns port
	ns=$(node_netns "$i")
	port=$(fabric_port "$i")
	mkdir -p "$(node_dir "$i")"
	if [ -n "$ns" ]; then
		new_netns "$ns"
		up_mgmt_link "$i"
		ip link add "$UPLINK" netns "$ns" type veth peer name "$port" netns "$FABRIC_NETNS"
	else
		ip link add "$UPLINK" type veth peer name "$port" netns "$FABRIC_NETNS"
		ip link set "$UPLINK" alias "$UPLINK_ALIAS"
		sysctl -qw "net.ipv6.conf.$UPLINK.disable_ipv6=1"
	fi
	in_netns "$ns" ip link set "$UPLINK" up
	ip -n "$FABRIC_NETNS" link set "$port" up
	vsctl "$FABRIC_DIR/ovs" add-port "$FABRIC_BRIDGE" "$port"
	ovs_up "$(node_dir "$i")/ovs" "$ns"
}

# sign_cert DIR NAME SUBJECT EXTENSIONS: DIR/NAME.key and DIR/NAME.crt signed by the cluster CA. The
# keys are P-256: an RSA key takes far longer to make, and there is one per node.
sign_cert() {
	local p=$1 ca=$CP_DIR/pki
	mkdir -p "$p"
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$p/$2.key" \
		-out "$p/$2.csr" -subj "$3" 2>/dev/null
	printf '%s\n' "$4" >"$p/$2.ext"
	openssl x509 -req -in "$p/$2.csr" -CA "$ca/ca.crt" -CAkey "$ca/ca.key" -CAcreateserial \
		-out "$p/$2.crt" -days 30 -extfile "$p/$2.ext" 2>/dev/null
}

# write_kubeconfig FILE USER CERT KEY: a kubeconfig for the API server at its management address.
write_kubeconfig() {
	cat >"$1" <<K
apiVersion: v1
kind: Config
clusters:
- name: $PROJECT
  cluster: {server: "$APISERVER", certificate-authority: "$CP_DIR/pki/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$3", client-key: "$4"}
contexts:
- name: $2
  context: {cluster: $PROJECT, user: $2}
current-context: $2
K
}

# write_agent_kubeconfig K: node-K/agent.kubeconfig, for a process acting for the node (the agent) in
# the node's namespace. Its user is the node's own identity, which the Node authorizer knows and the
# agent's RBAC binds.
write_agent_kubeconfig() {
	local i=$1 p name
	p=$(node_dir "$i")/pki
	name=$(node_name "$i")
	sign_cert "$p" agent "/O=system:nodes/CN=system:node:$name" "extendedKeyUsage=clientAuth"
	write_kubeconfig "$(node_kubeconfig "$i")" "$name" "$p/agent.crt" "$p/agent.key"
}

render() { # TEMPLATE OUT KEY=VALUE...: replace @KEY@ placeholders
	local tmpl=$1 out=$2 expr=()
	shift 2
	for kv in "$@"; do expr+=(-e "s|@${kv%%=*}@|${kv#*=}|g"); done
	sed "${expr[@]}" "$tmpl" >"$out"
	if grep -q '@[A-Z_]*@' "$out"; then die "unfilled placeholder in $out: $(grep -o '@[A-Z_]*@' "$out" | head -1)"; fi
}

install_cni() {
	mkdir -p "$CNI_BIN_DIR" "$CNI_CONF_DIR" "$(node_dir 1)/cni-ipam"
	: >"$DIR/created-cni-files"
	for plugin in "$CNI_PLUGIN_SRC"/*; do
		local dst
		dst=$CNI_BIN_DIR/$(basename "$plugin")
		[ -e "$dst" ] && continue
		ln -s "$plugin" "$dst"
		echo "$dst" >>"$DIR/created-cni-files"
	done
	render "$here/cluster/cni-primary.conflist" "$CNI_CONFLIST" CNI_NETWORK="$CNI_NETWORK" \
		CNI_BRIDGE="$CNI_BRIDGE" POD_CIDR="$(pod_cidr 1)" CNI_IPAM_DIR="$(node_dir 1)/cni-ipam"
	echo "$CNI_CONFLIST" >>"$DIR/created-cni-files"
}

up_containerd() {
	local c pause_image
	c=$(containerd_dir)
	pause_image=$(sed -n 's/^PAUSE_IMAGE=//p' "$IMG_DIR/images.env")
	mkdir -p "$c"
	render "$here/cluster/containerd.toml" "$c/config.toml" CONTAINERD_DIR="$c" \
		CONTAINERD_SOCK="$(containerd_sock)" PAUSE_IMAGE="$pause_image" CNI_BIN_DIR="$CNI_BIN_DIR" \
		CNI_CONF_DIR="$CNI_CONF_DIR"
	start_daemon "$c/containerd.pid" "$c/containerd.log" containerd --config "$c/config.toml"
	for _ in $(seq 200); do
		[ -S "$(containerd_sock)" ] && ctr_ version >/dev/null 2>&1 && break
		alive "$c/containerd.pid" || { tail -20 "$c/containerd.log" >&2; die "containerd exited"; }
		sleep 0.05
	done
	ctr_ version >/dev/null || die "containerd not ready"
	for tarball in "$IMG_DIR"/*.tar; do ctr_ images import "$tarball" >/dev/null; done
}

up_kubelet() {
	local k addr bin
	k=$(kubelet_dir)
	addr=$(node_ip 1)
	bin=$(tools_bin)
	mkdir -p "$k/root" "$k/pod-logs"
	# The node's InternalIP is its management address on the bridge: the kubelet listens on it, and
	# the API server reaches it there for logs and exec, without anything listening on the machine's
	# own network.
	sign_cert "$k/pki" kubelet-client "/O=system:nodes/CN=system:node:$REAL_NODE" "extendedKeyUsage=clientAuth"
	sign_cert "$k/pki" kubelet-serving "/O=system:nodes/CN=system:node:$REAL_NODE" "subjectAltName=IP:$addr,DNS:$REAL_NODE
extendedKeyUsage=serverAuth"
	write_kubeconfig "$k/kubeconfig" "$REAL_NODE" "$k/pki/kubelet-client.crt" "$k/pki/kubelet-client.key"
	render "$here/cluster/kubelet-config.yaml" "$k/config.yaml" CONTAINERD_SOCK="$(containerd_sock)" \
		NODE_IP="$addr" KUBELET_PORT="$KUBELET_PORT" KUBELET_HEALTHZ_PORT="$KUBELET_HEALTHZ_PORT" \
		KUBELET_PKI="$k/pki" CA_CRT="$CP_DIR/pki/ca.crt" KUBELET_DIR="$k"
	start_daemon "$k/kubelet.pid" "$k/kubelet.log" "$bin/kubelet" --config="$k/config.yaml" \
		--kubeconfig="$k/kubeconfig" --hostname-override="$REAL_NODE" --node-ip="$addr" \
		--root-dir="$k/root" --cert-dir="$k/pki" --v=2
	log "waiting for $REAL_NODE to be Ready"
	for _ in $(seq 600); do
		[ "$(kc get node "$REAL_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ] && break
		alive "$k/kubelet.pid" || { tail -30 "$k/kubelet.log" >&2; die "kubelet exited"; }
		sleep 0.2
	done
	[ "$(kc get node "$REAL_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}')" = True ] ||
		{ tail -30 "$k/kubelet.log" >&2; die "$REAL_NODE not Ready"; }
	kc patch node "$REAL_NODE" --type=merge \
		-p "{\"spec\":{\"podCIDR\":\"$(pod_cidr 1)\",\"podCIDRs\":[\"$(pod_cidr 1)\"]}}" >/dev/null
	# No node lifecycle controller runs, so nothing would lift the taint set at registration.
	kc taint node "$REAL_NODE" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
}

# up_simulated_node K: a Node object that looks like a healthy node; nothing but the tests and the
# agent act for it.
up_simulated_node() {
	local i=$1 name now
	name=$(node_name "$i")
	now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
	kc apply -f - >/dev/null <<N
apiVersion: v1
kind: Node
metadata:
  name: $name
  labels:
    kubernetes.io/hostname: $name
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    $PROJECT.local/simulated-node: "true"
    # The agent's DaemonSet tolerates every taint; this label keeps it off (no kubelet runs here).
    $PROJECT.dev/agent: "false"
spec:
  podCIDR: $(pod_cidr "$i")
  podCIDRs: [$(pod_cidr "$i")]
  taints:
  - {key: $SIMULATED_TAINT_KEY, value: "true", effect: NoSchedule}
N
	local cond='"lastHeartbeatTime":"'$now'","lastTransitionTime":"'$now'"'
	kc patch node "$name" --subresource=status --type=merge -p "$(
		cat <<P
{"status":{
 "conditions":[
  {"type":"Ready","status":"True","reason":"SimulatedNodeReady","message":"simulated by hack/local-cluster.sh",$cond},
  {"type":"MemoryPressure","status":"False","reason":"SimulatedNode",$cond},
  {"type":"DiskPressure","status":"False","reason":"SimulatedNode",$cond},
  {"type":"PIDPressure","status":"False","reason":"SimulatedNode",$cond}],
 "addresses":[{"type":"InternalIP","address":"$(node_ip "$i")"},{"type":"Hostname","address":"$name"}],
 "capacity":{"cpu":"2","memory":"4Gi","pods":"110"},
 "allocatable":{"cpu":"2","memory":"4Gi","pods":"110"},
 "nodeInfo":{"kubeletVersion":"$K8S_VERSION","operatingSystem":"linux","architecture":"amd64",
  "containerRuntimeVersion":"simulated://0","kernelVersion":"$(uname -r)","osImage":"simulated",
  "machineID":"","systemUUID":"","bootID":"","kubeProxyVersion":""}}}
P
	)" >/dev/null
	kc taint node "$name" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
}

# up_service_proxy: the `kubernetes` Service, as kube-proxy would make it work on node-1.
up_service_proxy() {
	local to=$KAPI_ADDR:$KAPI_PORT svc="ip daddr $KUBERNETES_SERVICE_IP tcp dport $KUBERNETES_SERVICE_PORT"
	nft -f - <<N
table ip $SERVICES_TABLE {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
		$svc dnat to $to
	}
	chain output {
		type nat hook output priority -100; policy accept;
		$svc dnat to $to
	}
}
N
}

services_table_exists() { nft list table ip "$SERVICES_TABLE" >/dev/null 2>&1; }

# up_workload_controllers: kube-controller-manager and kube-scheduler, each with its own client
# certificate (the identities the default RBAC knows) and no serving port.
up_workload_controllers() {
	local c=$CONTROLLERS_DIR bin
	bin=$(tools_bin)
	mkdir -p "$c"
	sign_cert "$c/pki" kube-controller-manager "/CN=system:kube-controller-manager" "extendedKeyUsage=clientAuth"
	sign_cert "$c/pki" kube-scheduler "/CN=system:kube-scheduler" "extendedKeyUsage=clientAuth"
	write_kubeconfig "$c/kube-controller-manager.kubeconfig" kube-controller-manager \
		"$c/pki/kube-controller-manager.crt" "$c/pki/kube-controller-manager.key"
	write_kubeconfig "$c/kube-scheduler.kubeconfig" kube-scheduler "$c/pki/kube-scheduler.crt" "$c/pki/kube-scheduler.key"
	# Every controller acts as its own ServiceAccount (bound by the default RBAC), with tokens
	# signed by the cluster's service account key.
	start_daemon "$c/kube-controller-manager.pid" "$c/kube-controller-manager.log" "$bin/kube-controller-manager" \
		--kubeconfig="$c/kube-controller-manager.kubeconfig" --controllers="$KCM_CONTROLLERS" \
		--use-service-account-credentials=true --service-account-private-key-file="$CP_DIR/pki/sa.key" \
		--root-ca-file="$CP_DIR/pki/ca.crt" --leader-elect=false --secure-port=0 --v=1
	start_daemon "$c/kube-scheduler.pid" "$c/kube-scheduler.log" "$bin/kube-scheduler" \
		--kubeconfig="$c/kube-scheduler.kubeconfig" --leader-elect=false --secure-port=0 --v=1
}

# wait_workload_controllers waits until the controller manager works: it has published the root CA
# that Pods' service account volumes need.
wait_workload_controllers() {
	for _ in $(seq 600); do
		kc -n default get configmap kube-root-ca.crt >/dev/null 2>&1 && return 0
		for d in kube-controller-manager kube-scheduler; do
			alive "$CONTROLLERS_DIR/$d.pid" || { tail -20 "$CONTROLLERS_DIR/$d.log" >&2; die "$d exited"; }
		done
		sleep 0.1
	done
	die "kube-controller-manager did not publish kube-root-ca.crt (see $CONTROLLERS_DIR/kube-controller-manager.log)"
}

stop_workload_controllers() {
	stop_pidfile "$CONTROLLERS_DIR/kube-controller-manager.pid" 10
	stop_pidfile "$CONTROLLERS_DIR/kube-scheduler.pid" 10
}

write_env() {
	local n=$1 bin tmp
	bin=$(tools_bin)
	tmp=$ENV_FILE.tmp
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
	} >"$tmp"
	mv "$tmp" "$ENV_FILE"
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

######################################################################################################
# down
######################################################################################################

# delete_real_node_pods deletes the Pods bound to the real node and waits until the kubelet has torn
# them down (CNI DEL included). Workloads go first and kube-system last, so that a CNI plugin served by
# a kube-system DaemonSet is still there for the others' DEL.
delete_real_node_pods() {
	alive "$(kubelet_dir)/kubelet.pid" && apiserver_up || return 0
	local sel=spec.nodeName=$REAL_NODE
	for phase in workloads system; do
		local nss
		nss=$(kc get pods -A --field-selector "$sel" -o jsonpath='{range .items[*]}{.metadata.namespace}{"\n"}{end}' | sort -u)
		for ns in $nss; do
			{ [ "$phase" = workloads ] && [ "$ns" = kube-system ]; } && continue
			kc -n "$ns" delete pods --field-selector "$sel" --wait=false >/dev/null 2>&1 || true
		done
		for _ in $(seq 300); do
			local left
			left=$(kc get pods -A --field-selector "$sel" -o jsonpath='{range .items[*]}{.metadata.namespace}{"\n"}{end}' 2>/dev/null |
				{ if [ "$phase" = workloads ]; then grep -vx kube-system; else cat; fi; } | wc -l || true)
			[ "$left" = 0 ] && break
			sleep 0.2
		done
	done
}

# stray_pids [node|all] prints processes that belong to this cluster although no pidfile may name them
# any more (after a crash): whatever runs in the kubelet's Pod cgroups, and the daemons whose command
# line names the state directory ("node": only the real node's kubelet, containerd, shims and runc).
stray_pids() {
	local mode=${1:-all} ancestors=" " p=$$ daemons
	while [ "$p" -gt 1 ] 2>/dev/null; do
		ancestors+="$p "
		p=$(awk '/^PPid:/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
	done
	daemons='^(kubelet|containerd|containerd-shim.*|runc)$'
	[ "$mode" = all ] && daemons='^(kubelet|containerd|containerd-shim.*|runc|etcd|kube-apiserver|kube-controller-manager|kube-scheduler|ovsdb-server|ovs-vswitchd)$'
	# Two greps over all of /proc find the candidates; only those are looked at one by one.
	{
		grep -ls ':/kubepods' /proc/[0-9]*/cgroup | sed 's|^/proc/\([0-9]*\)/.*|\1 cgroup|'
		grep -lasF "$DIR/" /proc/[0-9]*/cmdline | sed 's|^/proc/\([0-9]*\)/.*|\1 cmdline|'
	} 2>/dev/null | while read -r pid why; do
		[[ $ancestors == *" $pid "* ]] && continue
		running "$pid" || continue
		if [ "$why" = cmdline ]; then
			local exe
			exe=$(readlink "/proc/$pid/exe" 2>/dev/null || true)
			[[ ${exe##*/} =~ $daemons ]] || continue
		fi
		echo "$pid"
	done | sort -un
	return 0
}

# pod_netns_paths prints the network namespaces of the real node's Pod sandboxes, from containerd.
pod_netns_paths() {
	local state
	state=$(containerd_dir)/state/io.containerd.runtime.v2.task/k8s.io
	[ -d "$state" ] || return 0
	for cfg in "$state"/*/config.json; do
		[ -f "$cfg" ] && jq -r '.linux.namespaces[]? | select(.type=="network") | .path // empty' "$cfg" 2>/dev/null
	done | sort -u | grep -E '^/(var/)?run/netns/' || true
}

stop_kubelet() {
	delete_real_node_pods
	phase "pods deleted"
	stop_pidfile "$(kubelet_dir)/kubelet.pid" 20
	phase "kubelet stopped"
}

# stop_runtime stops containerd, whatever containers it still runs, and removes what they leave behind.
stop_runtime() {
	local netns_paths
	netns_paths=$(pod_netns_paths)
	if alive "$(containerd_dir)/containerd.pid"; then
		# Whatever the kubelet did not get to: stop the containers through containerd.
		for id in $(ctr_ tasks ls -q 2>/dev/null); do
			ctr_ tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1 || true
		done
		for id in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete --force "$id" >/dev/null 2>&1 || true; done
	fi
	stop_pidfile "$(containerd_dir)/containerd.pid" 20
	phase "containerd stopped"
	# Shims outlive containerd; their pids are in containerd's state directory.
	local state
	state=$(containerd_dir)/state/io.containerd.runtime.v2.task
	for pidfile in "$state"/*/*/shim.pid "$state"/*/*/init.pid; do
		[ -f "$pidfile" ] || continue
		local pid
		pid=$(cat "$pidfile")
		output_has containerd-shim tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" ||
			grep -q ':/kubepods' "/proc/$pid/cgroup" 2>/dev/null || continue
		kill -9 "$pid" 2>/dev/null || true
	done
	for pid in $(stray_pids node); do kill -9 "$pid" 2>/dev/null || true; done
	for path in $netns_paths /run/netns/cni-*; do
		[ -e "$path" ] || continue
		[[ $path == /run/netns/cni-* || $path == /var/run/netns/cni-* ]] || continue
		umount "$path" 2>/dev/null || umount -l "$path" 2>/dev/null || true
		rm -f "$path"
	done
	if output_has 'bridge ' ip -d link show "$CNI_BRIDGE"; then ip link del "$CNI_BRIDGE"; fi
	# Pod cgroups: children first; rmdir only ever removes empty ones.
	for hier in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "${hier}kubepods" ] && find "${hier}kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null
	done
	# Left by a cluster started before the management network existed.
	if lo_has_node_ip; then ip addr del "$(node_ip 1)/32" dev lo; fi
	return 0
}

unmount_all() {
	local m
	for _ in 1 2 3; do
		m=$(our_mounts)
		[ -n "$m" ] || return 0
		echo "$m" | sort -r | while read -r path; do umount "$path" 2>/dev/null || umount -l "$path" 2>/dev/null || true; done
	done
}

our_mounts() {
	awk '{print $5}' /proc/self/mountinfo | grep -E "^($DIR/|/run/containerd/|/var/lib/kubelet/|/run/netns/cni-)" || true
}

remove_host_files() {
	if [ -f "$DIR/created-cni-files" ]; then
		while read -r f; do rm -f "$f"; done <"$DIR/created-cni-files"
	fi
	# libcni caches every attachment's result here, whatever the configuration says.
	rm -f /var/lib/cni/results/"$CNI_NETWORK"-*
	if [ -f "$DIR/created-host-paths" ]; then
		# Deepest first, and only what was not there before `up`.
		sort -r "$DIR/created-host-paths" | while read -r p; do
			[ -n "$p" ] && rm -rf --one-file-system "$p"
		done
	fi
}

cmd_down() {
	local check=0
	while [ $# -gt 0 ]; do
		case "$1" in
		--check) check=1; shift ;;
		*) die "unknown flag $1 (usage: local-cluster.sh down [--check])" ;;
		esac
	done
	[ "$(id -u)" = 0 ] || die "needs root"
	local t0=$SECONDS
	# The controllers go first, or they would replace the Pods deleted next (DaemonSet, ReplicaSet).
	stop_workload_controllers
	phase "controllers stopped"
	# The Pods go first, while everything they use still runs (their CNI DEL may need the API server
	# and the node's OVS). Nothing else depends on anything, so the rest stops in parallel.
	stop_kubelet
	local jobs=()
	stop_runtime &
	jobs+=($!)
	# hack/ovs.sh deletes the bridges before it stops the daemons, so that no tap device stays behind.
	for ovs_dir in "$DIR"/node-*/ovs "$FABRIC_DIR/ovs"; do
		[ -d "$ovs_dir" ] || continue
		"$here/ovs.sh" down "$ovs_dir" >/dev/null 2>&1 &
		jobs+=($!)
	done
	"$here/control-plane.sh" down "$CP_DIR" >/dev/null 2>&1 &
	jobs+=($!)
	for job in "${jobs[@]}"; do wait "$job" || true; done
	phase "container runtime, OVS daemons and control plane down"
	if services_table_exists; then nft delete table ip "$SERVICES_TABLE"; fi
	if our_uplink_exists; then ip link del "$UPLINK"; fi
	# Deleting a veth's end deletes its peer at once; deleting the namespace would only do so later.
	for port in $(our_mgmt_ports); do ip link del "$port"; done
	if our_mgmt_bridge_exists; then ip link del "$MGMT_BRIDGE"; fi
	for ns in $(our_netns); do ip netns del "$ns"; done
	phase "network down"
	for pid in $(stray_pids all); do kill -9 "$pid" 2>/dev/null || true; done
	phase "strays killed"
	unmount_all
	remove_host_files
	for f in $(orphaned_host_files); do rm -f "$f"; done
	# The logs survive the teardown (a failed run's evidence): _output/logs/local-cluster-<time>/.
	keep_logs "$DIR"
	rm -rf --one-file-system "$DIR"
	phase "files removed"
	log "down in $((SECONDS - t0))s"
	if [ "$check" = 1 ]; then
		local left
		left=$(leftovers)
		[ -z "$left" ] || { printf 'left behind:\n%s\n' "$left" >&2; die "down left things behind"; }
		log "nothing left"
	fi
}

######################################################################################################
# status
######################################################################################################

our_netns() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^($FABRIC_NETNS|${PROJECT}-ext[0-9]+|${NODE_NETNS_PREFIX}[0-9]+)$" || true
}

# leftovers prints one line per thing of this cluster that exists (a process, a namespace, a link, a
# mount, a cgroup, a file); nothing at all means the machine is clean.
leftovers() {
	local pidfile seen=" "
	if [ -d "$DIR" ]; then
		while read -r pidfile; do
			alive "$pidfile" || continue
			local pid
			pid=$(cat "$pidfile")
			[[ $seen == *" $pid "* ]] && continue
			seen+="$pid "
			echo "process $pid ($(basename "$pidfile" .pid), ${pidfile#"$DIR"/})"
		done < <(find "$DIR" -xdev -name '*.pid' 2>/dev/null | sort)
	fi
	for pid in $(stray_pids all); do
		[[ $seen == *" $pid "* ]] && continue
		echo "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-100))"
	done
	for ns in $(our_netns); do echo "netns $ns"; done
	for f in /run/netns/cni-*; do [ -e "$f" ] && echo "netns $(basename "$f") (a Pod sandbox's)"; done
	our_uplink_exists && echo "link $UPLINK (root netns)"
	our_mgmt_bridge_exists && echo "link $MGMT_BRIDGE (root netns, management bridge$(mgmt_bridge_has_node_ip && echo ", $(node_ip 1)/$MGMT_PREFIX"))"
	for port in $(our_mgmt_ports); do echo "link $port (root netns, management port)"; done
	ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && echo "link $CNI_BRIDGE (root netns)"
	ip link show ovs-netdev >/dev/null 2>&1 && echo "link ovs-netdev (root netns; a userspace vswitchd's tap)"
	lo_has_node_ip && echo "address $(node_ip 1) on lo"
	for m in $(our_mounts); do echo "mount $m"; done
	for hier in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
		[ -d "${hier}kubepods" ] && echo "cgroup ${hier}kubepods"
	done
	[ -e "$CNI_CONFLIST" ] && echo "file $CNI_CONFLIST"
	output_has "$OVS_RUN_LINK" orphaned_host_files && echo "link $OVS_RUN_LINK (to the OVS of a cluster that no longer runs)"
	services_table_exists && echo "nftables table ip $SERVICES_TABLE"
	[ -f "$DIR/created-host-paths" ] && while read -r p; do { [ -e "$p" ] || [ -L "$p" ]; } && echo "path $p"; done <"$DIR/created-host-paths"
	[ -d "$DIR" ] && echo "directory $DIR"
	return 0
}

# check_up succeeds when every piece of the cluster runs; it prints what does not.
check_up() {
	local bad=0 n
	[ -f "$ENV_FILE" ] && [ -f "$DIR/nodes" ] || { echo "not up: no $ENV_FILE"; return 1; }
	n=$(cat "$DIR/nodes")
	local pidfiles=("$CP_DIR/etcd.pid" "$CP_DIR/kube-apiserver.pid" "$CONTROLLERS_DIR/kube-controller-manager.pid"
		"$CONTROLLERS_DIR/kube-scheduler.pid" "$(containerd_dir)/containerd.pid"
		"$(kubelet_dir)/kubelet.pid" "$FABRIC_DIR/ovs/run/ovsdb-server.pid" "$FABRIC_DIR/ovs/run/ovs-vswitchd.pid")
	for i in $(seq 1 "$n"); do
		pidfiles+=("$(node_dir "$i")/ovs/run/ovsdb-server.pid" "$(node_dir "$i")/ovs/run/ovs-vswitchd.pid")
	done
	for p in "${pidfiles[@]}"; do alive "$p" || { echo "not running: ${p#"$DIR"/}"; bad=1; }; done
	local netns=("$FABRIC_NETNS")
	for v in "${EXT_VLANS[@]}"; do netns+=("$(ext_netns "$v")"); done
	for i in $(seq 2 "$n"); do netns+=("$(node_netns "$i")"); done
	for ns in "${netns[@]}"; do netns_exists "$ns" || { echo "missing netns $ns"; bad=1; }; done
	our_uplink_exists || { echo "missing link $UPLINK of $REAL_NODE"; bad=1; }
	services_table_exists || { echo "missing nftables table ip $SERVICES_TABLE (the kubernetes Service)"; bad=1; }
	[ -L "$OVS_RUN_LINK" ] && [ "$(readlink "$OVS_RUN_LINK")" = "$(node_dir 1)/ovs/run" ] ||
		{ echo "$OVS_RUN_LINK does not link to node-1's OVS run directory"; bad=1; }
	if ! our_mgmt_bridge_exists; then
		echo "missing management bridge $MGMT_BRIDGE"
		bad=1
	elif ! mgmt_bridge_has_node_ip; then
		echo "management bridge $MGMT_BRIDGE lacks $(node_ip 1)/$MGMT_PREFIX"
		bad=1
	fi
	local ports
	ports=" $(our_mgmt_ports | xargs) "
	for i in $(seq 1 "$n"); do
		[ "$i" = 1 ] || [[ $ports == *" $(mgmt_port "$i") "* ]] ||
			{ echo "missing management port $(mgmt_port "$i") of $(node_name "$i")"; bad=1; }
		local kubeconfig
		kubeconfig=$(node_kubeconfig "$i")
		[ -f "$kubeconfig" ] || { echo "missing ${kubeconfig#"$DIR"/}"; bad=1; }
	done
	if apiserver_up; then
		for i in $(seq 1 "$n"); do
			local ready
			ready=$(kc get node "$(node_name "$i")" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
			[ "$ready" = True ] || { echo "node $(node_name "$i") not Ready"; bad=1; }
		done
	else
		echo "kube-apiserver not ready"
		bad=1
	fi
	return "$bad"
}

cmd_status() {
	local problems left
	if problems=$(check_up); then
		echo "local cluster: up"
		leftovers | sed 's/^/  /'
		return 0
	fi
	left=$(leftovers)
	if [ -z "$left" ]; then
		echo "local cluster: down, nothing left"
		return 3
	fi
	echo "local cluster: not (fully) up"
	echo "$problems" | sed 's/^/  problem: /'
	echo "$left" | sed 's/^/  present: /'
	return 1
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
