# shellcheck shell=bash disable=SC2154 # its variables are hack/local-cluster.sh's, which sources it
# Sourced by hack/local-cluster.sh: the machine's networks. The management bridge with node-1's
# address, the fabric switch with its external hosts, every node's namespace, private OVS and uplink,
# and how to tell the links this project made from anyone else's.

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
