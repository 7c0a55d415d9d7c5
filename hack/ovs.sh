#!/usr/bin/env bash
# Private Open vSwitch daemons (ovsdb-server + userspace-datapath ovs-vswitchd) in a directory of
# their own, optionally inside a network namespace, so that several "Nodes" can each have one.
#
#   hack/ovs.sh up DIR [NETNS]           start both daemons; DIR/run/db.sock is the OVSDB endpoint
#   hack/ovs.sh down DIR                 delete every bridge, stop both daemons (safe to repeat)
#   hack/ovs.sh restart-db DIR           restart ovsdb-server only (the database file is kept)
#   hack/ovs.sh restart-switch DIR       restart ovs-vswitchd only
#   hack/ovs.sh stop-db|start-db DIR     stop or start ovsdb-server only (outage tests)
#   hack/ovs.sh env DIR                  print OVS_RUNDIR/OVS_DBDIR/OVS_LOGDIR exports for ovs-vsctl
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

cmd=${1:?usage: ovs.sh up|down|restart-db|restart-switch|env DIR [NETNS]}
dir=$(realpath -m "${2:?missing DIR}")
export OVS_RUNDIR=$dir/run OVS_LOGDIR=$dir/log OVS_DBDIR=$dir/db
sock=$OVS_RUNDIR/db.sock

in_ns() {
	local ns
	ns=$(cat "$dir/netns" 2>/dev/null || true)
	if [ -n "$ns" ]; then ip netns exec "$ns" "$@"; else "$@"; fi
}

start_db() {
	in_ns ovsdb-server "$OVS_DBDIR/conf.db" --remote=punix:"$sock" \
		--remote=db:Open_vSwitch,Open_vSwitch,manager_options \
		--pidfile="$OVS_RUNDIR/ovsdb-server.pid" --log-file="$OVS_LOGDIR/ovsdb-server.log" \
		--detach --no-chdir -vconsole:emer
}

start_switch() {
	in_ns ovs-vswitchd unix:"$sock" --disable-system \
		--pidfile="$OVS_RUNDIR/ovs-vswitchd.pid" --log-file="$OVS_LOGDIR/ovs-vswitchd.log" \
		--detach --no-chdir -vconsole:emer
	# A write without --no-wait returns only once vswitchd has applied it, so it doubles as readiness.
	ovs-vsctl --db=unix:"$sock" --timeout=30 set Open_vSwitch . external_ids:podvlan-ready=true
}

case "$cmd" in
up)
	ns=${3-}
	if [ -f "$OVS_RUNDIR/ovs-vswitchd.pid" ] && kill -0 "$(cat "$OVS_RUNDIR/ovs-vswitchd.pid")" 2>/dev/null; then
		log "OVS in $dir already running"; exit 0
	fi
	mkdir -p "$OVS_RUNDIR" "$OVS_LOGDIR" "$OVS_DBDIR"
	echo "$ns" >"$dir/netns"
	[ -f "$OVS_DBDIR/conf.db" ] || ovsdb-tool create "$OVS_DBDIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema
	start_db
	ovs-vsctl --db=unix:"$sock" --no-wait init
	# The userspace datapath then copes with checksum-offloaded frames from veths; read only at start.
	ovs-vsctl --db=unix:"$sock" --no-wait set Open_vSwitch . other_config:userspace-tso-enable=true
	start_switch
	log "OVS up in $dir${ns:+ (netns $ns)}; OVSDB unix:$sock"
	;;
down)
	if [ -S "$sock" ] && [ -f "$OVS_RUNDIR/ovsdb-server.pid" ]; then
		# Bridges first: a userspace vswitchd killed with bridges leaves their tap devices behind.
		for br in $(ovs-vsctl --db=unix:"$sock" --timeout=5 list-br 2>/dev/null); do
			ovs-vsctl --db=unix:"$sock" --timeout=10 del-br "$br" 2>/dev/null || true
		done
	fi
	stop_pidfile "$OVS_RUNDIR/ovs-vswitchd.pid"
	stop_pidfile "$OVS_RUNDIR/ovsdb-server.pid"
	in_ns ip link del ovs-netdev 2>/dev/null || true
	;;
restart-db)
	stop_pidfile "$OVS_RUNDIR/ovsdb-server.pid"
	start_db
	;;
stop-db)
	stop_pidfile "$OVS_RUNDIR/ovsdb-server.pid"
	;;
start-db)
	start_db
	;;
restart-switch)
	stop_pidfile "$OVS_RUNDIR/ovs-vswitchd.pid"
	start_switch
	;;
env)
	echo "export OVS_RUNDIR=$OVS_RUNDIR OVS_LOGDIR=$OVS_LOGDIR OVS_DBDIR=$OVS_DBDIR"
	;;
*) die "unknown command $cmd" ;;
esac
