//go:build tools

// Package tools pins the ovs-cni plugin that hack/build-tools.sh builds for the benchmarks, which
// measure it beside the agent (see docs/performance.md).
package tools

import _ "github.com/k8snetworkplumbingwg/ovs-cni/cmd/plugin"
