#!/usr/bin/env bash
# Builds the project's two images without a Docker engine, with the content the Dockerfiles of
# build/images/ give them (static Go binaries on an empty base), and imports them into the local
# cluster's containerd when it is up:
#
#   <registry>/antrea-agent:<tag>        /usr/local/bin/antrea-agent, antrea (the CNI shim) and
#                                        antrea-install-cni (the DaemonSet's install step)
#   <registry>/antrea-controller:<tag>   /usr/local/bin/antrea-controller
#
#   hack/images.sh [--no-import]   writes _output/images/antrea-agent.tar and antrea-controller.tar
#                                  (docker-archive: `ctr images import`, `docker load`) and
#                                  _output/images/images.env (AGENT_IMAGE=, CONTROLLER_IMAGE=)
#
# IMAGE_REGISTRY (default podvlan.local) and IMAGE_TAG (default dev) name the images, as for
# hack/manifests.sh; the local cluster's Pods find them with imagePullPolicy: IfNotPresent.
# GOARCH (default this machine's) is the images' architecture: images of another architecture
# are never imported. VERSION (default dev) is what the binaries report (--version, their start
# log line, podvlan_build_info). IMAGES_DIR (default _output/images) is where they are written.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
. "$here/image-lib.sh"
cd "$REPO_ROOT"

import=1
case "${1-}" in
"") ;;
--no-import) import=0 ;;
*) die "usage: images.sh [--no-import]" ;;
esac

out=${IMAGES_DIR:-$REPO_ROOT/_output/images}
IMAGE_ARCH=${GOARCH:-$(go env GOARCH)}
export GOARCH=$IMAGE_ARCH
agent_image=$(image_ref antrea-agent)
controller_image=$(image_ref antrea-controller)
t0=$SECONDS

mkdir -p "$out"
work=$(mktemp -d "$out/.build.XXXXXX")
trap 'rm -rf "$work"' EXIT

# gobuild OUT PKG [LDFLAGS...]: a static binary, as the Dockerfiles build it.
gobuild() {
	local dst=$1 pkg=$2
	shift 2
	CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $*" -o "$dst" "$pkg"
}
stamp=$(version_ldflags)
bin=$work/agent/usr/local/bin
mkdir -p "$bin" "$work/controller/usr/local/bin"
gobuild "$bin/antrea-agent" ./cmd/antrea-agent "$stamp"
gobuild "$bin/antrea" ./cmd/antrea-cni "$stamp"
gobuild "$bin/antrea-install-cni" ./cmd/antrea-install-cni "$stamp"
gobuild "$work/controller/usr/local/bin/antrea-controller" ./cmd/antrea-controller "$stamp"
log "binaries built in $((SECONDS - t0))s"

docker_archive "$out/antrea-agent.tar" "$agent_image" "$work/agent" '["/usr/local/bin/antrea-agent"]'
docker_archive "$out/antrea-controller.tar" "$controller_image" "$work/controller" '["/usr/local/bin/antrea-controller"]'
printf 'AGENT_IMAGE=%s\nCONTROLLER_IMAGE=%s\n' "$agent_image" "$controller_image" >"$out/images.env"
log "images: $out/antrea-agent.tar ($agent_image), $out/antrea-controller.tar ($controller_image)"

[ "$import" = 1 ] || exit 0
if [ "$IMAGE_ARCH" != "$(GOARCH='' go env GOARCH)" ]; then
	log "$IMAGE_ARCH images are not imported into this $(GOARCH='' go env GOARCH) machine's cluster"
	exit 0
fi
env_file=${PODVLAN_CLUSTER_ENV:-$REPO_ROOT/_output/local-cluster/env}
sock=$(sed -n 's/^CONTAINERD_SOCK=//p' "$env_file" 2>/dev/null || true)
if [ -z "$sock" ] || [ ! -S "$sock" ]; then
	log "no local cluster is up: not imported (hack/local-cluster.sh up, then run this again)"
	exit 0
fi
for tarball in "$out/antrea-agent.tar" "$out/antrea-controller.tar"; do
	ctr --address "$sock" --namespace k8s.io images import "$tarball" >/dev/null
done
log "imported into the local cluster's containerd ($sock) in $((SECONDS - t0))s total"
