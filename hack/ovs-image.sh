#!/usr/bin/env bash
# Builds the antrea-ovs image, Open vSwitch for Nodes that have none, without a Docker engine:
# Debian's openvswitch-switch and openvswitch-common packages and the libraries they link
# (fetched with `apt-get download`, never installed on this machine), a static busybox for the
# shell and tools, and build/images/ovs/start-ovs.sh as the entry point, unpacked into one layer.
# build/yamls/antrea-with-ovs.yml runs it as the agent Pod's `openvswitch` container.
#
#   hack/ovs-image.sh [--no-import]   writes _output/images/antrea-ovs.tar (docker-archive) and
#                                     imports it into the local cluster's containerd when it is up
#
# IMAGE_REGISTRY and IMAGE_TAG name it as hack/images.sh names the others. The .debs are kept
# in _output/images/debs so that later builds need no download. The image is for this machine's
# architecture (the packages apt-get downloads).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/image-lib.sh"
cd "$REPO_ROOT"

import=1
case "${1-}" in
"") ;;
--no-import) import=0 ;;
*) die "usage: ovs-image.sh [--no-import]" ;;
esac

out=$REPO_ROOT/_output/images
debs=$out/debs
IMAGE_ARCH=$(dpkg --print-architecture)
image=$(image_ref antrea-ovs)
t0=$SECONDS
mkdir -p "$debs"
work=$(mktemp -d "$out/.ovs.XXXXXX")
trap 'rm -rf "$work"' EXIT

# The packages: Open vSwitch itself, and the closure of its library dependencies (not python3,
# kmod, procps and the other tools its maintainer scripts use, which the image does not run).
top=(openvswitch-switch openvswitch-common busybox-static)
# libdeps [--recurse] PACKAGE...: the library packages PACKAGEs depend on.
libdeps() {
	apt-cache depends --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances --no-pre-depends "$@" |
		sed -n 's/^ *Depends: \([^<][^ ]*\)$/\1/p' | grep -E '^(lib|zlib1g$|gcc-[0-9]+-base$)' | sort -u
}
# The libraries of the packages themselves, then everything those libraries need.
mapfile -t libs < <(libdeps "${top[@]}")
[ "${#libs[@]}" -gt 0 ] && mapfile -t libs < <({ printf '%s\n' "${libs[@]}"; libdeps --recurse "${libs[@]}"; } | sort -u)
[ "${#libs[@]}" -gt 0 ] || die "apt-cache found no library dependencies of ${top[*]} (apt-get update first)"
packages=("${top[@]}" "${libs[@]}")
missing=()
for p in "${packages[@]}"; do
	compgen -G "$debs/${p}_*_*.deb" >/dev/null || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	log "downloading ${#missing[@]} packages: ${missing[*]}"
	(cd "$debs" && apt-get -q download "${missing[@]}" >/dev/null 2>"$work/apt.err") || die "apt-get download: $(cat "$work/apt.err")"
fi

rootfs=$work/rootfs
mkdir -p "$rootfs"
for p in "${packages[@]}"; do
	deb=$(compgen -G "$debs/${p}_*_*.deb" | sort -V | tail -1) || die "package $p was not downloaded"
	dpkg-deb -x "$deb" "$rootfs"
	echo "$(basename "$deb")" >>"$work/packages"
done
# What the image never uses: documentation, manual pages, the Python bindings and the init scripts.
rm -rf "$rootfs"/usr/share/{doc,man,lintian,bug} "$rootfs"/usr/lib/python3* "$rootfs"/etc/init.d "$rootfs"/lib/systemd "$rootfs"/usr/lib/systemd
# Debian 12 is merged-/usr; the packages hold their files under both trees, the links make one.
for d in bin sbin lib lib64; do
	if [ -d "$rootfs/$d" ] && [ ! -L "$rootfs/$d" ]; then
		mkdir -p "$rootfs/usr/$d"
		cp -a "$rootfs/$d/." "$rootfs/usr/$d/"
		rm -rf "${rootfs:?}/$d"
	fi
	[ -e "$rootfs/usr/$d" ] && ln -sfn "usr/$d" "$rootfs/$d"
done
for applet in $("$rootfs/usr/bin/busybox" --list); do
	[ -e "$rootfs/usr/bin/$applet" ] || [ -e "$rootfs/usr/sbin/$applet" ] || ln -s busybox "$rootfs/usr/bin/$applet"
done
# Debian makes /usr/sbin/ovs-vswitchd an alternative (openvswitch-switch-dpdk offers another)
# in its maintainer script, which unpacking does not run.
[ -e "$rootfs/usr/sbin/ovs-vswitchd" ] || ln -s /usr/lib/openvswitch-switch/ovs-vswitchd "$rootfs/usr/sbin/ovs-vswitchd"
mkdir -p "$rootfs/tmp" "$rootfs/var/run/openvswitch" "$rootfs/var/lib/openvswitch" "$rootfs/var/log/openvswitch" "$rootfs/usr/local/bin"
chmod 1777 "$rootfs/tmp"
install -m 0755 build/images/ovs/start-ovs.sh "$rootfs/usr/local/bin/start-ovs"
# Which packages (and versions) the image holds, for audits.
install -D -m 0644 "$work/packages" "$rootfs/usr/share/podvlan/packages.txt"
# Every library a daemon or tool needs must be in the image: fail the build, not the Node. Each
# one runs in the image's root, with the image's dynamic loader and libraries only.
for bin in /usr/sbin/ovsdb-server /usr/sbin/ovs-vswitchd /usr/bin/ovs-vsctl /usr/bin/ovsdb-tool /usr/bin/ovs-appctl; do
	chroot "$rootfs" "$bin" --version >/dev/null 2>"$work/err" || die "$bin does not run in the image: $(cat "$work/err")"
done

docker_archive "$out/antrea-ovs.tar" "$image" "$rootfs" '["/usr/local/bin/start-ovs"]'
log "image: $out/antrea-ovs.tar ($image, $(du -m "$out/antrea-ovs.tar" | cut -f1) MB, ${#packages[@]} packages) in $((SECONDS - t0))s"
grep -q '^OVS_IMAGE=' "$out/images.env" 2>/dev/null || echo "OVS_IMAGE=$image" >>"$out/images.env"

[ "$import" = 1 ] || exit 0
env_file=${PODVLAN_CLUSTER_ENV:-$REPO_ROOT/_output/local-cluster/env}
sock=$(sed -n 's/^CONTAINERD_SOCK=//p' "$env_file" 2>/dev/null || true)
if [ -z "$sock" ] || [ ! -S "$sock" ]; then
	log "no local cluster is up: not imported"
	exit 0
fi
ctr --address "$sock" --namespace k8s.io images import "$out/antrea-ovs.tar" >/dev/null
log "imported into the local cluster's containerd ($sock)"
