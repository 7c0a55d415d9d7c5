#!/usr/bin/env bash
# Runs every code generator (hack/generate-*.sh); with --verify, fails when the committed generated
# code differs from what the generators produce.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"
cd "$REPO_ROOT"

for g in "$here"/generate-*.sh; do
	[ -e "$g" ] || continue
	log "running $(basename "$g")"
	bash "$g"
done

if [ "${1-}" = --verify ]; then
	# A failing git status must fail the check, not pass it as "nothing changed".
	changes=$(git status --porcelain -- . ':(exclude)_output' ':(exclude)bin')
	if [ -n "$changes" ]; then
		echo "$changes" >&2
		git diff --stat >&2
		die "generated code is stale: run 'make generate' and commit the result"
	fi
	log "generated code is up to date"
fi
