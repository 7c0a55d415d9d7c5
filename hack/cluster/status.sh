# shellcheck shell=bash disable=SC2154 # its variables are hack/local-cluster.sh's, which sources it
# Sourced by hack/local-cluster.sh: what of a local cluster exists, whether it is fully up, and which
# machine-wide files a cluster that no longer runs left behind.

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
