# shellcheck shell=bash disable=SC2154 # its variables are hack/local-cluster.sh's, which sources it
# Sourced by hack/local-cluster.sh: the Kubernetes pieces beside the control plane. Certificates and
# kubeconfigs, node-1's CNI set-up, containerd and kubelet, the simulated Nodes' objects, the
# `kubernetes` Service's DNAT, kube-controller-manager and kube-scheduler.

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
