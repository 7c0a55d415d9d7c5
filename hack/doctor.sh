#!/usr/bin/env bash
# `make doctor`: says what this machine lacks for `make demo` and `make test`, and how to fix each
# thing; changes nothing. Exits 1 when something must be fixed first, 0 otherwise (notes about
# what will take time, such as the first build of the Kubernetes tools, are not problems).
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

problems=0
ok() { printf '  ok       %s\n' "$1"; }
note() { printf '  note     %s\n' "$1"; }
fix() {
	printf '  MISSING  %s\n           fix: %s\n' "$1" "$2"
	problems=$((problems + 1))
}

echo "podvlan doctor: what make demo / make test need on this machine"

if [ "$(id -u)" = 0 ]; then ok "running as root"; else fix "not root" "run as root (sudo make ...): the local cluster creates network namespaces, veths and Open vSwitch daemons"; fi

problem=$(go_version_problem)
if [ -z "$problem" ]; then ok "Go $(GOTOOLCHAIN=local go env GOVERSION) (go.mod needs $(go_mod_version))"; else fix "Go" "$problem"; fi

missing=$(missing_packages | sort -u | tr '\n' ' ')
if [ -z "$missing" ]; then
	ok "Debian packages (Open vSwitch, containerd, runc, CNI plugins, tcpdump, nftables, ...)"
else
	fix "Debian packages: $missing" "hack/setup.sh (or: apt-get install -y $missing)"
fi

if systemd_running; then
	for unit in openvswitch-switch.service ovs-vswitchd.service ovsdb-server.service; do
		if systemctl is-active --quiet "$unit"; then
			fix "the distribution's $unit is running: its Open vSwitch owns /var/run/openvswitch, where the local cluster links node-1's" \
				"systemctl disable --now openvswitch-switch ovs-vswitchd ovsdb-server (hack/setup.sh does it for the packages it installs)"
			break
		fi
	done
	if systemctl is-active --quiet containerd.service; then
		note "the distribution's containerd.service runs; the local cluster starts its own on private paths (systemctl disable --now containerd if nothing else needs it)"
	fi
else
	ok "no systemd: no distribution service to stop (containers start none)"
fi
if [ -e /var/run/openvswitch ] && [ ! -L /var/run/openvswitch ]; then
	if system_ovs_running; then
		fix "an Open vSwitch runs from /var/run/openvswitch" "stop it (systemctl disable --now openvswitch-switch, or by its pidfiles in /run/openvswitch)"
	else
		fix "/var/run/openvswitch is left over from a stopped Open vSwitch" "rm -rf /run/openvswitch"
	fi
fi
if ip link show ovs-netdev >/dev/null 2>&1 && [ ! -d "$REPO_ROOT/_output/local-cluster" ]; then
	fix "link ovs-netdev exists: a local cluster of another checkout, or another userspace ovs-vswitchd, runs here (or one died)" "make cluster-down in that checkout, or stop that ovs-vswitchd; a dead one's link goes with: ip link del ovs-netdev"
fi
if [ -d "$REPO_ROOT/_output/local-cluster" ]; then
	note "a local cluster is up (or was not taken down): make cluster-down removes it"
fi

avail_gb() { df -P -BG "$1" 2>/dev/null | awk 'NR==2 {sub("G","",$4); print $4}'; }
cache=${PODVLAN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}}
mkdir -p "$cache" 2>/dev/null || true
for d in "$REPO_ROOT" "$cache"; do
	gb=$(avail_gb "$d")
	if [ -n "$gb" ] && [ "$gb" -lt 10 ]; then
		fix "only ${gb} GB free under $d" "free space: the tools build and the Go caches need about 10 GB"
	fi
done
[ -n "${gb-}" ] && [ "${gb:-0}" -ge 10 ] && ok "disk space (${gb} GB free for the tools cache)"

bin=$(tools_bin_dir)
if [ -x "$bin/kube-apiserver" ] && [ -x "$bin/kubelet" ] && [ -x "$bin/etcd" ]; then
	ok "Kubernetes $K8S_VERSION tools built in $bin"
else
	note "the Kubernetes $K8S_VERSION tools are not built yet: the first make demo / make test builds them into $bin (about 8 minutes on 2 cores; progress every 30 s, output in _output/logs/)"
fi
if [ -d "$REPO_ROOT/_output/logs" ]; then
	note "logs of earlier runs: ${REPO_ROOT}/_output/logs/"
fi

if [ "$problems" = 0 ]; then
	echo "nothing to fix"
	exit 0
fi
echo "$problems thing(s) to fix first"
exit 1
