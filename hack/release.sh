#!/usr/bin/env bash
# Builds the release artifacts of one version into _output/release/<VERSION>/:
#
#   antrea.yml                     the install manifest: every object but the CRDs, images <registry>/antrea-*:<tag>
#   crds.yml                       the CustomResourceDefinitions alone (IPPool, NetworkAttachmentDefinition)
#   images/antrea-agent-linux-{amd64,arm64}.tar, images/antrea-controller-linux-{amd64,arm64}.tar
#                                  one docker-archive per architecture (`docker load`, `ctr images import`)
#   images/antrea-agent.oci.tar, images/antrea-controller.oci.tar
#                                  both architectures in one OCI image layout with an index, to push
#                                  as one multi-architecture image (`skopeo copy --all oci-archive:...`)
#   kustomize/base/                manifest/antrea.yml of this release without its ConfigMap, which the base
#                                  generates from antrea-agent.conf and antrea-controller.conf
#   kustomize/overlays/example/    an overlay: private registry, feature gates on, a secondary bridge
#   SHA256SUMS
#
#   hack/release.sh               with VERSION=x.y.z (required), IMAGE_REGISTRY (default podvlan.local),
#                                 IMAGE_TAG (default the version), ARCHES (default "amd64 arm64")
#
# The images are built without a Docker engine (hack/images.sh); the binaries in them report the
# version (--version, their start log line, podvlan_build_info).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"

VERSION=${VERSION-}
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]] ||
	die "VERSION must be a release version such as 1.2.0 (got '${VERSION}'): make release VERSION=1.2.0"
export VERSION
export IMAGE_REGISTRY=${IMAGE_REGISTRY:-$PROJECT.local}
export IMAGE_TAG=${IMAGE_TAG:-$VERSION}
arches=${ARCHES:-amd64 arm64}
out=$REPO_ROOT/_output/release/$VERSION
t0=$SECONDS

rm -rf "$out"
mkdir -p "$out/images"
log "release $VERSION: images $IMAGE_REGISTRY/antrea-{agent,controller}:$IMAGE_TAG for $arches into ${out#"$REPO_ROOT"/}"

# The manifests. A release is pulled from a registry: IfNotPresent pulls each tag once per Node.
IMAGE_PULL_POLICY=IfNotPresent "$here/manifests.sh" "$out"

# The images, one architecture at a time.
for arch in $arches; do
	GOARCH=$arch IMAGES_DIR=$out/images/.$arch "$here/images.sh" --no-import
	for c in antrea-agent antrea-controller; do mv "$out/images/.$arch/$c.tar" "$out/images/$c-linux-$arch.tar"; done
	rm -rf "$out/images/.$arch"
done

# oci_archive NAME REF: the docker-archives of NAME for every architecture as one OCI image layout
# whose index.json names (by tag, ref.name) one image index with a manifest per platform. Layers,
# configs, manifests and the image index are content-addressed blobs.
oci_archive() {
	local name=$1 ref=$2 lay tmp arch layer_digest layer_size config_digest config_size manifest manifest_digest entries=""
	lay=$(mktemp -d "$out/images/.oci.XXXXXX")
	mkdir -p "$lay/blobs/sha256"
	for arch in $arches; do
		tmp=$(mktemp -d "$out/images/.src.XXXXXX")
		tar -C "$tmp" -xf "$out/images/$name-linux-$arch.tar"
		layer_digest=$(sha256sum "$tmp/layer.tar" | cut -d' ' -f1)
		layer_size=$(stat -c %s "$tmp/layer.tar")
		mv "$tmp/layer.tar" "$lay/blobs/sha256/$layer_digest"
		config_digest=$(sha256sum "$tmp/config.json" | cut -d' ' -f1)
		config_size=$(stat -c %s "$tmp/config.json")
		mv "$tmp/config.json" "$lay/blobs/sha256/$config_digest"
		rm -rf "$tmp"
		manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
			"$config_digest" "$config_size" "$layer_digest" "$layer_size")
		manifest_digest=$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)
		printf '%s' "$manifest" >"$lay/blobs/sha256/$manifest_digest"
		entries+="${entries:+,}$(printf '{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"%s","os":"linux"}}' \
			"$manifest_digest" "${#manifest}" "$arch")"
	done
	# The image index of all platforms is a blob; the layout's index.json names it by its tag.
	local index index_digest
	index=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[%s]}' "$entries")
	index_digest=$(printf '%s' "$index" | sha256sum | cut -d' ' -f1)
	printf '%s' "$index" >"$lay/blobs/sha256/$index_digest"
	printf '{"imageLayoutVersion":"1.0.0"}' >"$lay/oci-layout"
	printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.index.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"%s","io.containerd.image.name":"%s"}}]}' \
		"$index_digest" "${#index}" "${ref##*:}" "$ref" >"$lay/index.json"
	tar -C "$lay" --owner=0 --group=0 --numeric-owner --sort=name -cf "$out/images/$name.oci.tar" oci-layout index.json blobs
	rm -rf "$lay"
}
for c in antrea-agent antrea-controller; do oci_archive "$c" "$IMAGE_REGISTRY/$c:$IMAGE_TAG"; done

# The kustomize base holds this release's manifest; the overlay shows what an installation changes.
mkdir -p "$out/kustomize"
cp -r "$REPO_ROOT/build/kustomize/base" "$REPO_ROOT/build/kustomize/overlays" "$out/kustomize/"
cp "$out/antrea.yml" "$out/kustomize/base/manifest/antrea.yml"
rm -f "$out/kustomize/base/manifest/.gitignore"
# The overlay renames the base's images, which carry this release's registry.
sed -i -e "s|- name: $PROJECT.local/|- name: $IMAGE_REGISTRY/|" "$out/kustomize/overlays/example/kustomization.yaml"

(cd "$out" && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum >SHA256SUMS)
log "release $VERSION ready in $((SECONDS - t0))s: ${out#"$REPO_ROOT"/}"
