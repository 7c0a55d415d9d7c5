#!/usr/bin/env bash
# Builds the two container images the local cluster's real node needs, without any image registry:
#
#   podvlan.local/pause:<tag>   the sandbox ("pause") image: build/pause/linux/pause.c from the
#                               k8s.io/kubernetes module, compiled with gcc -static
#   podvlan.local/testbox:1     a static busybox with every applet (sh, ip, ping, nc, sleep, cat, ...)
#                               so that tests can look inside Pods
#
#   hack/node-images.sh OUTDIR  writes OUTDIR/pause.tar and OUTDIR/testbox.tar (docker-archive, what
#                               `ctr images import` reads) and OUTDIR/images.env (PAUSE_IMAGE=, TEST_IMAGE=)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/image-lib.sh"

out=$(realpath -m "${1:?usage: node-images.sh OUTDIR}")
TEST_IMAGE=${TEST_IMAGE:-$PROJECT.local/testbox:1}

# static_busybox prints the path of a statically linked busybox: the installed one when it is static
# (Debian's busybox-static), otherwise one unpacked from a downloaded busybox-static package.
static_busybox() {
	local bb
	bb=$(command -v busybox || true)
	# ldd exits non-zero for a static binary, hence no pipeline under pipefail.
	if [ -n "$bb" ] && [[ $(LC_ALL=C ldd "$bb" 2>&1 || true) == *"not a dynamic executable"* ]]; then
		echo "$bb"
		return
	fi
	log "no static busybox installed; unpacking the busybox-static package"
	(cd "$out" && apt-get download busybox-static 2>&1 | grep -v '^W: Download is performed unsandboxed' || true) >&2
	dpkg-deb -x "$out"/busybox-static_*.deb "$out/bbdeb"
	echo "$out/bbdeb/bin/busybox"
}

mkdir -p "$out"
kdir=$(go -C "$here/tools/k8s" mod download -json k8s.io/kubernetes | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[ -f "$kdir/build/pause/linux/pause.c" ] || die "pause.c not found in the k8s.io/kubernetes module ($kdir)"
pause_tag=$(sed -n 's/^TAG ?= *//p' "$kdir/build/pause/Makefile")
PAUSE_IMAGE=$PROJECT.local/pause:${pause_tag:?no TAG in build/pause/Makefile}

rm -rf "$out/rootfs-pause" "$out/rootfs-testbox"
mkdir -p "$out/rootfs-pause" "$out/rootfs-testbox/bin" "$out/rootfs-testbox/tmp" "$out/rootfs-testbox/etc"
gcc -Os -Wall -static -DVERSION="v$pause_tag" -o "$out/rootfs-pause/pause" "$kdir/build/pause/linux/pause.c"
docker_archive "$out/pause.tar" "$PAUSE_IMAGE" "$out/rootfs-pause" '["/pause"]'

cp "$(static_busybox)" "$out/rootfs-testbox/bin/busybox"
for applet in $("$out/rootfs-testbox/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$out/rootfs-testbox/bin/$applet"
done
chmod 1777 "$out/rootfs-testbox/tmp"
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$out/rootfs-testbox/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$out/rootfs-testbox/etc/group"
docker_archive "$out/testbox.tar" "$TEST_IMAGE" "$out/rootfs-testbox" '["/bin/sh"]'

rm -rf "$out/rootfs-pause" "$out/rootfs-testbox" "$out/bbdeb" "$out"/busybox-static_*.deb
printf 'PAUSE_IMAGE=%s\nTEST_IMAGE=%s\n' "$PAUSE_IMAGE" "$TEST_IMAGE" >"$out/images.env"
log "images ready in $out: $PAUSE_IMAGE, $TEST_IMAGE"
