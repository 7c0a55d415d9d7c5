# shellcheck shell=bash
# Container images without a Docker engine or a registry; sourced by hack/node-images.sh and
# hack/images.sh, never run.

# The references of the project's images; hack/manifests.sh writes the same ones into antrea.yml.
IMAGE_REGISTRY=${IMAGE_REGISTRY:-$PROJECT.local}
IMAGE_TAG=${IMAGE_TAG:-dev}
image_ref() { echo "$IMAGE_REGISTRY/$1:$IMAGE_TAG"; } # COMPONENT (antrea-agent, antrea-controller)

# docker_archive OUT.tar NAME:TAG ROOTFS CMD-JSON: a single-layer image of ROOTFS in the layout
# `docker save` writes (layer.tar, config.json with the layer's diff_id, manifest.json), which
# `ctr images import` and `docker load` read.
docker_archive() {
	local tarball=$1 ref=$2 rootfs=$3 cmd=$4 work digest
	work=$(mktemp -d "$(dirname "$tarball")/.img.XXXXXX")
	tar -C "$rootfs" --owner=0 --group=0 --numeric-owner --sort=name -cf "$work/layer.tar" .
	digest=$(sha256sum "$work/layer.tar" | cut -d' ' -f1)
	cat >"$work/config.json" <<J
{"architecture":"${IMAGE_ARCH:-amd64}","os":"linux","config":{"Cmd":$cmd,"Env":["PATH=/usr/local/bin:/bin:/sbin:/usr/bin:/usr/sbin"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":["sha256:$digest"]}}
J
	printf '[{"Config":"config.json","RepoTags":["%s"],"Layers":["layer.tar"]}]\n' "$ref" >"$work/manifest.json"
	tar -C "$work" -cf "$tarball" manifest.json config.json layer.tar
	rm -rf "$work"
}
