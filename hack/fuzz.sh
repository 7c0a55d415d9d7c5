#!/usr/bin/env bash
# Runs every native Go fuzz target of the module, one after the other, each for FUZZTIME.
#   hack/fuzz.sh [FUZZTIME]     FUZZTIME is a go test -fuzztime value; default 10s
# Targets are found, not listed, so that a new func FuzzXxx is fuzzed without editing this file.
# Stops at the first failure; go test then leaves the failing input under the package's
# testdata/fuzz/ directory, where plain `go test` replays it as a regression case.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

fuzztime=${1:-10s}
cd "$REPO_ROOT"

# Packages of this module only (go list skips nested modules such as hack/tools/*); -e keeps a
# package that does not build in the list, so that it fails loudly below instead of being skipped.
mapfile -t dirs < <(go list -e -f '{{.Dir}}' ./...)

targets=()
for dir in "${dirs[@]}"; do
	shopt -s nullglob
	files=("$dir"/*_test.go)
	shopt -u nullglob
	((${#files[@]})) || continue
	while read -r name; do
		targets+=("$dir $name")
	done < <(sed -n -E 's/^func (Fuzz[A-Za-z0-9_]*)\([A-Za-z_][A-Za-z0-9_]* \*testing\.F\).*/\1/p' "${files[@]}" | sort -u)
done

((${#targets[@]})) || die "no fuzz targets found"
log "${#targets[@]} fuzz targets, ${fuzztime} each"

# inputs DIR: how many saved inputs the target's corpus directory holds.
inputs() { { find "$1" -type f 2>/dev/null || true; } | wc -l; }

for target in "${targets[@]}"; do
	read -r dir name <<<"$target"
	pkg=./${dir#"$REPO_ROOT"/}
	corpus=$dir/testdata/fuzz/$name
	for attempt in 1 2; do
		log "fuzzing $name in $pkg"
		before=$(inputs "$corpus")
		go test -run='^$' -fuzz="^${name}\$" -fuzztime="$fuzztime" "$pkg" && continue 2
		# A failing input is always written to the corpus. A failure without one is Go's fuzz
		# coordinator racing its own -fuzztime deadline on a loaded machine (golang/go#75804,
		# "context deadline exceeded", fixed in Go 1.27): run the target once more.
		if [ "$(inputs "$corpus")" != "$before" ] || [ $attempt = 2 ]; then
			die "$name in $pkg failed; a failing generated input is saved under $pkg/testdata/fuzz/$name/"
		fi
		log "$name stopped without a failing input (the Go fuzz deadline race); once more"
	done
done
log "all ${#targets[@]} fuzz targets passed"
