#!/usr/bin/env bash
# Checks the antrea-ovs image (hack/ovs-image.sh) the way a Node runs it, without a cluster: its
# root file system, unpacked from the archive, runs its entry point in a network namespace of its
# own (as the agent Pod's host network would be) with the database directory bind-mounted from a
# host directory (as the hostPath is). It checks that
#   1. ovsdb-server and ovs-vswitchd start, and a netdev bridge with a VLAN access port works,
#   2. SIGTERM stops both daemons and the container's entry point exits 0,
#   3. a restart finds the bridge and the port in the kept database and ovs-vswitchd runs them again,
#   4. the userspace TSO switch is set before ovs-vswitchd starts,
#   5. with CONTAINERD_SOCK set (the local cluster's node-1: hack/ovs-image.sh imported the image),
#      the image as containerd and runc run it, in the same namespace and on the same database
#      directory, finds the bridge again and stops cleanly.
# Needs root; it uses OVS and a network namespace, so do not run it while other real-stack tests run.
# It prints "N passed, M failed" and exits non-zero on any failure. Everything it makes is removed.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

tarball=${1:-$REPO_ROOT/_output/images/antrea-ovs.tar}
[ -f "$tarball" ] || die "$tarball not found: run hack/ovs-image.sh first"
[ "$(id -u)" = 0 ] || die "needs root (network namespaces, mounts)"

work=$(mktemp -d /tmp/ovs-image-check.XXXXXX)
ns=pvovscheck$$
root=$work/rootfs
hostdb=$work/host-var-lib-openvswitch
pid=
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "PASS: $*"; }
bad() { failed=$((failed + 1)); echo "FAIL: $*"; }

ctr_id=pvovscheck$$
ctr_() { ctr --address "$CONTAINERD_SOCK" --namespace "${CONTAINERD_NAMESPACE:-k8s.io}" "$@"; }
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	if [ -n "${CONTAINERD_SOCK-}" ]; then
		ctr_ tasks kill -s KILL "$ctr_id" >/dev/null 2>&1 || true
		ctr_ containers delete "$ctr_id" >/dev/null 2>&1 || true
	fi
	ip netns del "$ns" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$root" "$hostdb" "$work/img"
tar -C "$work/img" -xf "$tarball"
tar -C "$root" -xf "$work/img/layer.tar"
mkdir -p "$root/dev" "$root/proc" "$root/sys"
ip netns add "$ns"
ip -n "$ns" link set lo up

# start: the entry point in the namespace, with /dev, /proc, /sys and the "hostPath" mounted in a
# private mount namespace, its output in $work/ovs.log (this run's only).
start() {
	ip netns exec "$ns" unshare -m sh -c "
		mount --rbind /dev '$root/dev' && mount -t proc proc '$root/proc' && mount -t sysfs sysfs '$root/sys' &&
		mount --bind '$hostdb' '$root/var/lib/openvswitch' &&
		exec chroot '$root' /usr/local/bin/start-ovs" >"$work/ovs.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		grep -q 'running; database' "$work/ovs.log" && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	cat "$work/ovs.log"
	return 1
}
# in_image CMD...: a tool of the image, talking to the daemons through their sockets.
in_image() {
	unshare -m sh -c 'mount --rbind /dev "$0/dev" && exec chroot "$0" env OVS_RUNDIR=/var/run/openvswitch "$@"' "$root" "$@"
}
stop() {
	kill -TERM "$pid"
	local rc=0
	wait "$pid" || rc=$?
	pid=
	return "$rc"
}

if start; then ok "the entry point started ovsdb-server and ovs-vswitchd in namespace $ns"; else bad "the daemons did not start"; exit 1; fi
tso=$(in_image ovs-vsctl get Open_vSwitch . other_config:userspace-tso-enable)
[ "$tso" = '"true"' ] && ok "userspace-tso-enable is true" || bad "userspace-tso-enable is $tso"

ip -n "$ns" link add pvcheck0 type veth peer name pvcheck1
ip -n "$ns" link set pvcheck0 up
ip -n "$ns" link set pvcheck1 up
in_image ovs-vsctl --timeout=10 add-br br-check -- set bridge br-check datapath_type=netdev
in_image ovs-vsctl --timeout=10 add-port br-check pvcheck0 tag=100
ofport=$(in_image ovs-vsctl get interface pvcheck0 ofport)
[ "${ofport:-0}" -gt 0 ] && ok "netdev bridge br-check with access port pvcheck0 (tag 100, ofport $ofport)" || bad "port pvcheck0 has ofport $ofport: $(in_image ovs-vsctl get interface pvcheck0 error)"

if stop; then ok "SIGTERM stopped the daemons and the entry point exited 0"; else bad "the entry point exited non-zero on SIGTERM"; fi
leftover=$(ip netns pids "$ns" | wc -l)
[ "$leftover" = 0 ] && ok "no process is left in the namespace" || bad "$leftover processes left in $ns"
[ -s "$hostdb/conf.db" ] && ok "the database is kept on the host ($hostdb/conf.db)" || bad "no database in $hostdb"

if start; then ok "restarted on the kept database"; else bad "restart failed"; exit 1; fi
tag=$(in_image ovs-vsctl get port pvcheck0 tag 2>&1 || true)
[ "$tag" = 100 ] && ok "after the restart port pvcheck0 is still on br-check with tag 100" || bad "after the restart: port pvcheck0 tag $tag"
if in_image ovs-appctl -t ovs-vswitchd dpif/show 2>/dev/null | grep -q 'pvcheck0'; then
	ok "ovs-vswitchd runs the kept port again (dpif/show)"
else
	bad "ovs-vswitchd does not show pvcheck0: $(in_image ovs-appctl -t ovs-vswitchd dpif/show 2>&1)"
fi
stop || true

if [ -n "${CONTAINERD_SOCK-}" ]; then
	image=$(tar -xOf "$tarball" manifest.json | sed -n 's/.*"RepoTags":\["\([^"]*\)".*/\1/p')
	ctr_ images ls -q | grep -qx "$image" || die "$image is not in containerd at $CONTAINERD_SOCK: run hack/ovs-image.sh"
	ctr_ run -d --privileged --with-ns "network:/var/run/netns/$ns" \
		--mount "type=bind,src=$hostdb,dst=/var/lib/openvswitch,options=rbind:rw" "$image" "$ctr_id" >/dev/null
	ready=0
	for _ in $(seq 100); do
		if ctr_ tasks exec --exec-id probe$$ "$ctr_id" ovs-appctl -t ovs-vswitchd version >/dev/null 2>&1; then ready=1; break; fi
		sleep 0.1
	done
	[ "$ready" = 1 ] && ok "containerd runs the image $image: ovs-vswitchd answers" || bad "the image did not start under containerd"
	tag=$(ctr_ tasks exec --exec-id tag$$ "$ctr_id" ovs-vsctl --timeout=10 get port pvcheck0 tag 2>&1 || true)
	[ "$tag" = 100 ] && ok "under containerd the kept database has br-check's port pvcheck0 (tag 100)" || bad "under containerd: port pvcheck0 tag $tag"
	ctr_ tasks kill -s TERM "$ctr_id" >/dev/null
	status=
	for _ in $(seq 100); do
		status=$(ctr_ tasks ls | awk -v id="$ctr_id" '$1 == id {print $3}')
		[ "$status" = STOPPED ] && break
		sleep 0.1
	done
	[ "$status" = STOPPED ] && ok "SIGTERM stops the container" || bad "the container is $status after SIGTERM"
	ctr_ tasks delete "$ctr_id" >/dev/null 2>&1 || true
	ctr_ containers delete "$ctr_id" >/dev/null 2>&1 || true
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
