# shellcheck shell=bash disable=SC2154 # its variables are hack/local-cluster.sh's, which sources it
# Sourced by hack/local-cluster.sh: `down`, which removes everything `up` made (Pods first, while what
# their CNI DEL needs still runs), including what a crash left without a pidfile.

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
