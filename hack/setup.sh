#!/usr/bin/env bash
# Installs what the local cluster and the tests need on a Debian 12 machine, as root. Idempotent:
# nothing is installed when everything is already there.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root: the local cluster creates network namespaces, veths and Open vSwitch daemons"
command -v go >/dev/null || die "Go 1.26 is required (go not found in PATH)"

# command -> Debian package that provides it
declare -A need=(
	[ovs-vswitchd]=openvswitch-switch [tcpdump]=tcpdump [ip]=iproute2 [ethtool]=ethtool
	[ping]=iputils-ping [nc]=netcat-openbsd [containerd]=containerd [runc]=runc
	[jq]=jq [nft]=nftables [openssl]=openssl [curl]=curl [bc]=bc [protoc]=protobuf-compiler [gcc]=gcc
)
missing=()
for cmd in "${!need[@]}"; do command -v "$cmd" >/dev/null || missing+=("${need[$cmd]}"); done
[ -x /usr/lib/cni/bridge ] || missing+=(containernetworking-plugins)
[ -x /bin/busybox ] || missing+=(busybox-static)
# gcc -static of the pause image needs the C library's static archive.
[ -f /usr/lib/x86_64-linux-gnu/libc.a ] || missing+=(libc6-dev)
command -v flock >/dev/null || missing+=(util-linux)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
log "system packages present"
