# shellcheck shell=bash
# Shared settings and helpers for the hack/ scripts; sourced, never run.
K8S_VERSION=${K8S_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.3}
PROJECT=podvlan
# shellcheck disable=SC2034 # used by the scripts that source this file
REPO_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

log() { printf '[%s] %s\n' "$(basename "$0")" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Binaries are cached outside the checkout so that fresh clones on the same machine reuse them.
tools_bin_dir() {
	local base=${PODVLAN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/$PROJECT/tools}
	echo "$base/k8s-$K8S_VERSION-etcd-$ETCD_VERSION"
}

# running PID: the process exists and is not a zombie (PID 1 may be slow to reap the daemons that
# were reparented to it, and a zombie is as good as gone).
running() { grep -qsE '^State:[[:space:]]+[^Z[:space:]]' "/proc/$1/status"; }

# stop_pidfile PIDFILE [SECONDS]: SIGTERM the process the file names, SIGKILL it after SECONDS
# (default 10), and remove the file. Processes are stopped by pid, never by name.
stop_pidfile() {
	local pidfile=$1 wait=${2:-10} pid
	[ -f "$pidfile" ] || return 0
	pid=$(cat "$pidfile")
	if kill "$pid" 2>/dev/null; then
		for _ in $(seq $((wait * 20))); do running "$pid" || break; sleep 0.05; done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$pidfile"
}

# version_ldflags: the -ldflags that stamp VERSION (default dev) and the source revision into
# package version, which every binary reports (--version, its start log line, podvlan_build_info).
version_ldflags() {
	local pkg=github.com/podvlan/podvlan/pkg/version rev
	rev=$(git -C "$REPO_ROOT" describe --always --dirty --abbrev=12 --exclude='*' 2>/dev/null || echo unknown)
	echo "-X $pkg.Version=${VERSION:-dev} -X $pkg.Revision=$rev"
}

# go_mod_version: the go line of the project's go.mod (e.g. 1.26.8).
go_mod_version() { sed -n 's/^go \([0-9.]*\)$/\1/p' "$REPO_ROOT/go.mod"; }

# version_ge A B: version A (dotted numbers) is at least B.
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

# go_version_problem: empty when the go in PATH can build the project; otherwise what is wrong and
# how to fix it, in one sentence. Debian 12's own golang package (1.19) is too old.
go_version_problem() {
	local want have
	want=$(go_mod_version)
	if ! command -v go >/dev/null; then
		echo "Go $want or newer is required and go is not in PATH: install it (the Go release for linux, unpacked into /usr/local/go) and add /usr/local/go/bin to PATH"
		return
	fi
	have=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed 's/^go//')
	[ -n "$have" ] || have=$(go version | sed -n 's/^go version go\([0-9.]*\).*/\1/p')
	if ! version_ge "$have" "$want"; then
		echo "go.mod needs Go $want or newer, but $(command -v go) is Go ${have:-unknown}: install Go $want (the Go release for linux, unpacked into /usr/local/go) and put /usr/local/go/bin first in PATH (Debian 12's golang package is too old)"
	fi
}

# run_logged LOG WHAT COMMAND...: runs COMMAND with all its output (module downloads, compiler
# messages) in LOG, and prints one progress line for WHAT every HEARTBEAT seconds (default 30):
# time spent, modules downloaded so far, the log's path. On failure it prints the log's last
# lines and its path, and returns the command's status.
run_logged() {
	local logfile=$1 what=$2 rc=0 pid start=$SECONDS beat=${HEARTBEAT:-30}
	shift 2
	mkdir -p "$(dirname "$logfile")"
	: >"$logfile"
	log "$what (output in $logfile)"
	"$@" >>"$logfile" 2>&1 &
	pid=$!
	(
		while sleep "$beat"; do
			kill -0 "$pid" 2>/dev/null || exit 0
			log "$what: $((SECONDS - start))s, $(grep -c '^go: downloading' "$logfile" || true) modules downloaded so far"
		done
	) &
	local beater=$!
	wait "$pid" || rc=$?
	kill "$beater" 2>/dev/null || true
	wait "$beater" 2>/dev/null || true
	if [ "$rc" != 0 ]; then
		grep -v '^go: downloading' "$logfile" | tail -n 20 | sed 's/^/    /' >&2 || true
		log "error: $what failed (status $rc); the whole output is in $logfile"
		return "$rc"
	fi
	log "$what: done in $((SECONDS - start))s ($(grep -c '^go: downloading' "$logfile" || true) modules downloaded)"
}

# keep_logs DIR: moves every log file under DIR (its *.log files and pod-logs directories) to
# _output/logs/<name of DIR>-<time>/, keeping the newest 5 such directories, and prints where, so
# that a teardown after a failure does not take the evidence with it.
keep_logs() {
	local dir=$1 dest files
	[ -d "$dir" ] || return 0
	files=$(cd "$dir" && find . -xdev \( -name '*.log' -o -name pod-logs -type d \) -prune -print 2>/dev/null | sort)
	[ -n "$files" ] || return 0
	dest=$REPO_ROOT/_output/logs/$(basename "$dir")-$(date -u +%Y%m%dT%H%M%SZ)
	mkdir -p "$dest"
	while IFS= read -r f; do
		mkdir -p "$dest/$(dirname "$f")"
		cp -a "$dir/$f" "$dest/$f" 2>/dev/null || true
	done <<<"$files"
	# The newest five runs are kept.
	ls -1dt "$REPO_ROOT/_output/logs/$(basename "$dir")"-* 2>/dev/null | tail -n +6 | xargs -r rm -rf --one-file-system
	log "logs kept in ${dest#"$REPO_ROOT"/}"
}

# missing_packages: the Debian packages of the commands and files the local cluster and the tests
# need that are not there, one per line.
missing_packages() {
	# command -> Debian package that provides it
	local -A need=(
		[ovs-vswitchd]=openvswitch-switch [tcpdump]=tcpdump [ip]=iproute2 [ethtool]=ethtool
		[ping]=iputils-ping [nc]=netcat-openbsd [containerd]=containerd [runc]=runc
		[jq]=jq [nft]=nftables [openssl]=openssl [curl]=curl [bc]=bc [protoc]=protobuf-compiler [gcc]=gcc
		[flock]=util-linux [git]=git [shellcheck]=shellcheck
	)
	local cmd
	for cmd in "${!need[@]}"; do command -v "$cmd" >/dev/null || echo "${need[$cmd]}"; done
	[ -x /usr/lib/cni/bridge ] || echo containernetworking-plugins
	[ -x /bin/busybox ] || echo busybox-static
	# gcc -static of the pause image needs the C library's static archive.
	[ -f "/usr/lib/$(uname -m)-linux-gnu/libc.a" ] || echo libc6-dev
}

# systemd_running: the machine was booted with systemd (sd_booted(3)); containers usually are not.
systemd_running() { [ -d /run/systemd/system ] && command -v systemctl >/dev/null; }

# stop_distribution_services UNIT...: on a systemd machine, stops and disables the units (those
# that exist), so that they neither hold the paths the local cluster uses nor come back at boot;
# then removes the run directory a stopped system Open vSwitch leaves behind.
stop_distribution_services() {
	systemd_running || return 0
	local unit
	for unit in "$@"; do
		systemctl list-unit-files "$unit" >/dev/null 2>&1 || continue
		if systemctl is-active --quiet "$unit" || systemctl is-enabled --quiet "$unit" 2>/dev/null; then
			log "stopping and disabling the distribution's $unit (the local cluster runs its own)"
			systemctl disable --now "$unit" >/dev/null 2>&1 || log "warning: could not stop $unit: systemctl disable --now $unit"
		fi
	done
	# Empty of live daemons now; the local cluster links node-1's Open vSwitch there.
	if [ -d /run/openvswitch ] && [ ! -L /var/run/openvswitch ] && ! system_ovs_running; then
		rm -rf --one-file-system /run/openvswitch
	fi
}

# system_ovs_running: an ovsdb-server or ovs-vswitchd runs from the system's run directory.
system_ovs_running() {
	local f
	for f in /run/openvswitch/ovsdb-server.pid /run/openvswitch/ovs-vswitchd.pid; do
		[ -f "$f" ] && running "$(cat "$f")" && return 0
	done
	return 1
}
