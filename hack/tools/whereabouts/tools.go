//go:build tools

// Package tools pins the Whereabouts IPAM plugin that hack/build-tools.sh builds for the
// benchmarks, which measure it beside the agent's IPPool allocator (see docs/performance.md).
package tools

import _ "github.com/k8snetworkplumbingwg/whereabouts/cmd"
