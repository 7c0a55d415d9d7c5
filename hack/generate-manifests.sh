#!/usr/bin/env bash
# Regenerates build/yamls/antrea.yml from its pieces with the default images (hack/manifests.sh).
# Runs after generate-apis.sh (alphabetical order), which writes the IPPool CRD it includes.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# The committed manifest names the default local images, whatever the caller's environment says.
IMAGE_REGISTRY='' IMAGE_TAG='' IMAGE_PULL_POLICY='' exec "$here/manifests.sh"
