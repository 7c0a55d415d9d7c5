#!/usr/bin/env bash
# A Kubernetes control plane on 127.0.0.1: generated certificates, etcd, kube-apiserver with RBAC.
#
#   hack/control-plane.sh up DIR      start (binaries from hack/build-tools.sh); writes DIR/kubeconfig
#                                     and DIR/env (KUBECONFIG=..., KUBECTL=..., APISERVER=https://...)
#   hack/control-plane.sh down DIR    stop both by pid and remove DIR (safe to repeat)
#
# Ports: KAPI_PORT (6443), ETCD_PORT (2379), ETCD_PEER_PORT (2380). KAPI_BIND (127.0.0.1) is the
# apiserver's listen address; the kubeconfig and the readiness probe use it too (loopback when it is
# a wildcard), and it is in the serving certificate. KAPI_EXTRA_SANS (comma separated IPs) are added to
# that certificate as well, so that simulated Nodes in their own network namespaces can reach the
# apiserver on a management network. etcd always stays on 127.0.0.1.
# KAPI_ADVERTISE (a non-loopback address the apiserver listens on) makes the apiserver keep the
# `kubernetes` Service's endpoint at that address (lease reconciler), so that in-cluster clients
# reach it through the Service; without it no endpoint is kept (a loopback address cannot be one).
# Webhooks behind a Service are called at the Service's endpoint (aggregator routing): no
# kube-proxy is needed between the apiserver and them. Privileged containers are allowed (node
# agents such as a CNI plugin's DaemonSet need them), as in any kubeadm cluster.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

cmd=${1:?usage: control-plane.sh up|down DIR}
dir=$(realpath -m "${2:?missing DIR}")
kapi_port=${KAPI_PORT:-6443}
kapi_bind=${KAPI_BIND:-127.0.0.1}
# The address clients dial: the bound one, or loopback when the apiserver listens on every address.
case "$kapi_bind" in
0.0.0.0) kapi_host=127.0.0.1 ;;
:: | "[::]") kapi_host=::1 ;;
*) kapi_host=${kapi_bind#[}; kapi_host=${kapi_host%]} ;;
esac
if [[ $kapi_host == *:* ]]; then kapi_url="https://[$kapi_host]:$kapi_port"; else kapi_url="https://$kapi_host:$kapi_port"; fi
extra_sans=""
kapi_extra_sans=${KAPI_EXTRA_SANS-}
[ "$kapi_host" = 127.0.0.1 ] || kapi_extra_sans="$kapi_host,$kapi_extra_sans"
for ip in ${kapi_extra_sans//,/ }; do extra_sans="$extra_sans,IP:$ip"; done
if [ -n "${KAPI_ADVERTISE-}" ]; then
	endpoint_flags="--advertise-address=$KAPI_ADVERTISE --endpoint-reconciler-type=lease"
else
	endpoint_flags="--endpoint-reconciler-type=none"
fi
etcd_port=${ETCD_PORT:-2379}
etcd_peer_port=${ETCD_PEER_PORT:-2380}

gen_pki() {
	local p=$dir/pki
	mkdir -p "$p"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$p/ca.key" -out "$p/ca.crt" -days 30 \
		-subj "/CN=$PROJECT-local-ca" 2>/dev/null
	sign() { # name subject extfile-content
		openssl req -newkey rsa:2048 -nodes -keyout "$p/$1.key" -out "$p/$1.csr" -subj "$2" 2>/dev/null
		printf '%s\n' "$3" >"$p/$1.ext"
		openssl x509 -req -in "$p/$1.csr" -CA "$p/ca.crt" -CAkey "$p/ca.key" -CAcreateserial \
			-out "$p/$1.crt" -days 30 -extfile "$p/$1.ext" 2>/dev/null
	}
	local host_ip
	host_ip=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p' || true)
	sign apiserver "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1${host_ip:+,IP:$host_ip}$extra_sans
extendedKeyUsage=serverAuth"
	sign admin "/CN=$PROJECT-admin/O=system:masters" "extendedKeyUsage=clientAuth"
	# The apiserver presents this to kubelets for logs/exec.
	sign apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client/O=system:masters" "extendedKeyUsage=clientAuth"
	openssl genrsa -out "$p/sa.key" 2048 2>/dev/null
	openssl rsa -in "$p/sa.key" -pubout -out "$p/sa.pub" 2>/dev/null
}

write_kubeconfig() { # file user-cert user-key
	cat >"$1" <<K
apiVersion: v1
kind: Config
clusters:
- name: $PROJECT
  cluster: {server: "$kapi_url", certificate-authority: "$dir/pki/ca.crt"}
users:
- name: user
  user: {client-certificate: "$2", client-key: "$3"}
contexts:
- name: $PROJECT
  context: {cluster: $PROJECT, user: user}
current-context: $PROJECT
K
}

case "$cmd" in
up)
	bin=$("$here/build-tools.sh")
	if [ -f "$dir/kube-apiserver.pid" ] && kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null; then
		log "control plane in $dir already running"; exit 0
	fi
	mkdir -p "$dir"
	[ -f "$dir/pki/ca.crt" ] || gen_pki
	rm -rf "$dir/etcd-data"
	"$bin/etcd" --name "$PROJECT" --data-dir "$dir/etcd-data" \
		--listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
		--listen-peer-urls "http://127.0.0.1:$etcd_peer_port" \
		--initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer_port" \
		--initial-cluster "$PROJECT=http://127.0.0.1:$etcd_peer_port" \
		--unsafe-no-fsync --log-level=warn >"$dir/etcd.log" 2>&1 &
	echo $! >"$dir/etcd.pid"
	for _ in $(seq 200); do
		curl -fsS "http://127.0.0.1:$etcd_port/health" 2>/dev/null | grep -q '"health":"true"' && break
		kill -0 "$(cat "$dir/etcd.pid")" 2>/dev/null || { tail -20 "$dir/etcd.log" >&2; die "etcd exited"; }
		sleep 0.1
	done
	p=$dir/pki
	"$bin/kube-apiserver" --bind-address="$kapi_bind" --secure-port="$kapi_port" \
		--etcd-servers="http://127.0.0.1:$etcd_port" \
		--tls-cert-file="$p/apiserver.crt" --tls-private-key-file="$p/apiserver.key" \
		--client-ca-file="$p/ca.crt" --authorization-mode=Node,RBAC \
		--kubelet-client-certificate="$p/apiserver-kubelet-client.crt" \
		--kubelet-client-key="$p/apiserver-kubelet-client.key" \
		--kubelet-preferred-address-types=InternalIP --kubelet-certificate-authority="$p/ca.crt" \
		--service-account-issuer=https://kubernetes.default.svc.cluster.local \
		--service-account-key-file="$p/sa.pub" --service-account-signing-key-file="$p/sa.key" \
		--service-cluster-ip-range=10.96.0.0/16 $endpoint_flags --enable-aggregator-routing=true \
		--allow-privileged=true --anonymous-auth=false --profiling=false --v=1 >"$dir/kube-apiserver.log" 2>&1 &
	echo $! >"$dir/kube-apiserver.pid"
	write_kubeconfig "$dir/kubeconfig" "$p/admin.crt" "$p/admin.key"
	for _ in $(seq 600); do
		"$bin/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null 2>&1 && break
		kill -0 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null ||
			{ tail -20 "$dir/kube-apiserver.log" >&2; die "kube-apiserver exited"; }
		sleep 0.1
	done
	"$bin/kubectl" --kubeconfig "$dir/kubeconfig" get --raw /readyz >/dev/null || die "kube-apiserver not ready"
	printf 'KUBECONFIG=%s\nKUBECTL=%s\nTOOLS_BIN=%s\nAPISERVER=%s\n' "$dir/kubeconfig" "$bin/kubectl" "$bin" \
		"$kapi_url" >"$dir/env"
	log "control plane up at $kapi_url: KUBECONFIG=$dir/kubeconfig"
	;;
down)
	stop_pidfile "$dir/kube-apiserver.pid"
	stop_pidfile "$dir/etcd.pid"
	rm -rf "$dir"
	;;
*) die "unknown command $cmd" ;;
esac
