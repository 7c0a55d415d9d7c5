#!/usr/bin/env bash
# Static checks: golangci-lint (pinned in hack/tools/lint, built once into the tools cache) over
# the Go module with .golangci.yml, and shellcheck over the scripts under hack/ and .ci/.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"

version=$(sed -n 's/^\tgithub.com\/golangci\/golangci-lint\/v2 \(v[^ ]*\).*$/\1/p' "$here/tools/lint/go.mod")
[ -n "$version" ] || die "no golangci-lint version pinned in hack/tools/lint/go.mod"
base=${PODVLAN_TOOLS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/$PROJECT/tools}
lint=$base/lint-$version/golangci-lint
if [ ! -x "$lint" ]; then
	log "building golangci-lint $version into $(dirname "$lint") (about 3 minutes once)"
	mkdir -p "$(dirname "$lint")"
	(cd "$here/tools/lint" && go build -trimpath -ldflags "-s -w" -o "$lint.tmp" \
		github.com/golangci/golangci-lint/v2/cmd/golangci-lint)
	mv "$lint.tmp" "$lint"
fi
command -v shellcheck >/dev/null || die "shellcheck not found: run hack/setup.sh (Debian package shellcheck)"

rc=0
log "golangci-lint $version"
"$lint" run ./... || rc=1
log "shellcheck"
shellcheck --severity=warning -x -P "$here" "$here"/*.sh "$here"/cluster/*.sh .ci/run || rc=1
[ $rc = 0 ] && log "lint passed"
exit $rc
