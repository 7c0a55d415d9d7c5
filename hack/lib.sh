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
