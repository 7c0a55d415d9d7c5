#!/bin/sh
# Entry point of the antrea-ovs image: runs ovsdb-server and ovs-vswitchd for the agent Pod's
# Node, with the database in OVS_DBDIR (a hostPath, so that a restart of the container or the Pod
# keeps the bridge, its uplinks and the Pods' ports) and the sockets in OVS_RUNDIR (shared with
# the agent container). It stays in the foreground, prints both daemons' logs, and stops both on
# SIGTERM without --cleanup, so that the datapath keeps its ports across a restart.
#
#   OVS_DBDIR          database directory (conf.db)        default /var/lib/openvswitch
#   OVS_RUNDIR         db.sock, pidfiles, control sockets  default /var/run/openvswitch
#   OVS_LOGDIR         log files                           default /var/log/openvswitch
#   OVS_USERSPACE_TSO  other_config:userspace-tso-enable   default true (the userspace datapath
#                      then keeps TCP/UDP working with the Pods' checksum offload on)
#
# The datapath of the secondary bridge is the agent's choice (ovsDatapathType in
# antrea-agent.conf): netdev (userspace) works anywhere; system needs the openvswitch kernel
# module on the Node, which this script loads when /lib/modules is mounted and it is absent.
set -eu
OVS_DBDIR=${OVS_DBDIR:-/var/lib/openvswitch}
OVS_RUNDIR=${OVS_RUNDIR:-/var/run/openvswitch}
OVS_LOGDIR=${OVS_LOGDIR:-/var/log/openvswitch}
OVS_USERSPACE_TSO=${OVS_USERSPACE_TSO:-true}
export OVS_DBDIR OVS_RUNDIR OVS_LOGDIR
schema=/usr/share/openvswitch/vswitch.ovsschema
db=$OVS_DBDIR/conf.db

log() { echo "start-ovs: $*" >&2; }

mkdir -p "$OVS_DBDIR" "$OVS_RUNDIR" "$OVS_LOGDIR"
if [ ! -d /sys/module/openvswitch ] && [ -d "/lib/modules/$(uname -r)" ]; then
	modprobe openvswitch 2>/dev/null && log "loaded the openvswitch kernel module" ||
		log "no openvswitch kernel module: only the userspace datapath (ovsDatapathType: netdev) works"
fi

# A database kept from an earlier run is converted when the image's schema is newer; a file that
# is not a database (a crash while it was created) is set aside rather than trusted.
if [ -s "$db" ] && ! ovsdb-tool db-version "$db" >/dev/null 2>&1; then
	log "$db is not a readable database: moved to $db.broken"
	mv -f "$db" "$db.broken"
fi
if [ ! -s "$db" ]; then
	ovsdb-tool create "$db" "$schema"
	log "created $db"
elif [ "$(ovsdb-tool needs-conversion "$db" "$schema")" = yes ]; then
	ovsdb-tool convert "$db" "$schema"
	log "converted $db to schema $(ovsdb-tool schema-version "$schema")"
fi

# Leftovers of a container that was killed: the daemons refuse to start on a live pidfile only.
rm -f "$OVS_RUNDIR/db.sock" "$OVS_RUNDIR/ovsdb-server.pid" "$OVS_RUNDIR/ovs-vswitchd.pid" \
	"$OVS_RUNDIR"/ovsdb-server.*.ctl "$OVS_RUNDIR"/ovs-vswitchd.*.ctl

ovsdb-server "$db" --remote="punix:$OVS_RUNDIR/db.sock" --remote=db:Open_vSwitch,Open_vSwitch,manager_options \
	--pidfile="$OVS_RUNDIR/ovsdb-server.pid" --log-file="$OVS_LOGDIR/ovsdb-server.log" --detach --no-chdir
ovs-vsctl --no-wait init
# Read by ovs-vswitchd only when it starts.
ovs-vsctl --no-wait set Open_vSwitch . "other_config:userspace-tso-enable=$OVS_USERSPACE_TSO"
ovs-vswitchd "unix:$OVS_RUNDIR/db.sock" --pidfile="$OVS_RUNDIR/ovs-vswitchd.pid" \
	--log-file="$OVS_LOGDIR/ovs-vswitchd.log" --detach --no-chdir
# A write that waits for ovs-vswitchd is the readiness check (wait-until cur_cfg can hang).
ovs-vsctl --timeout=30 set Open_vSwitch . external_ids:podvlan-ovs-started="$(date +%s)"
log "ovsdb-server and ovs-vswitchd $(ovs-vswitchd --version | head -1 | awk '{print $NF}') running; database $db"

tail -n +1 -F "$OVS_LOGDIR/ovsdb-server.log" "$OVS_LOGDIR/ovs-vswitchd.log" 2>/dev/null &
tailer=$!

# stop_daemon NAME: ask it to exit (ovs-vswitchd without --cleanup: the datapath keeps its ports),
# then wait for it to be gone, SIGKILL after 10 s.
stop_daemon() {
	pid=$(cat "$OVS_RUNDIR/$1.pid" 2>/dev/null) || return 0
	ovs-appctl -t "$1" exit 2>/dev/null || kill "$pid" 2>/dev/null || true
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -9 "$pid" 2>/dev/null || true
}
stop() {
	log "stopping (the datapath and the database stay)"
	stop_daemon ovs-vswitchd
	stop_daemon ovsdb-server
	kill "$tailer" 2>/dev/null || true
	wait "$tailer" 2>/dev/null || true
	exit 0
}
trap stop TERM INT

# Exit (and let the kubelet restart the container) when either daemon dies.
while kill -0 "$(cat "$OVS_RUNDIR/ovsdb-server.pid")" 2>/dev/null && kill -0 "$(cat "$OVS_RUNDIR/ovs-vswitchd.pid")" 2>/dev/null; do
	sleep 2 &
	wait $! || true
done
log "a daemon exited; see the log above"
kill "$tailer" 2>/dev/null || true
exit 1
