#!/usr/bin/env bash
# Installs what the local cluster and the tests need on a Debian 12 machine, as root: a systemd VM
# or a container alike. Idempotent: nothing is installed when everything is already there.
#
#   - checks that the go in PATH is at least go.mod's version (Debian's own golang is too old);
#   - installs the missing Debian packages;
#   - on a machine run by systemd, stops and disables the distribution's Open vSwitch and
#     containerd services that this run installed: the local cluster runs its own daemons on
#     private paths, and a system ovs-vswitchd would own /var/run/openvswitch, where node-1's
#     Open vSwitch is linked (containers start no services: nothing to stop there);
#   - downloads the project's Go modules, output in _output/logs/go-mod-download.log with a
#     progress line every 30 seconds.
# `make doctor` (hack/doctor.sh) says what is missing without changing anything.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/lib.sh"

[ "$(id -u)" = 0 ] || die "run as root: the local cluster creates network namespaces, veths and Open vSwitch daemons"
problem=$(go_version_problem)
[ -z "$problem" ] || die "$problem"

mapfile -t missing < <(missing_packages)
if [ ${#missing[@]} -gt 0 ]; then
	log "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	run_logged "$REPO_ROOT/_output/logs/apt.log" "apt-get update" apt-get update
	run_logged "$REPO_ROOT/_output/logs/apt-install.log" "apt-get install" \
		apt-get install -y --no-install-recommends "${missing[@]}"
	# Only what this run installed is stopped: an Open vSwitch or containerd the machine already
	# ran for something else is left alone (make doctor names it if it gets in the way).
	installed_services=()
	for pkg in "${missing[@]}"; do
		case "$pkg" in
		openvswitch-switch) installed_services+=(openvswitch-switch.service ovs-vswitchd.service ovsdb-server.service) ;;
		containerd) installed_services+=(containerd.service) ;;
		esac
	done
	if [ ${#installed_services[@]} -gt 0 ]; then stop_distribution_services "${installed_services[@]}"; fi
fi
log "system packages present"

run_logged "$REPO_ROOT/_output/logs/go-mod-download.log" "downloading the project's Go modules" \
	go -C "$REPO_ROOT" mod download
