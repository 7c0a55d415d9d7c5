// Package benchharness is what the benchmark programs under hack/bench share: a bench "Node" (a
// network namespace with private Open vSwitch daemons, reaching the local cluster's API server),
// antrea-agent processes started on it, Pod sandboxes (a Pod object and a network namespace)
// attached through the CNI shim with libcni, the "floor" (the bare kernel and OVSDB work of one
// attachment, with no agent), statistics, result files and PNG charts.
//
// Benchmarks measure the agent against a floor measured in the same run on the same machine, so
// that their figures are ratios that survive a busy or a different machine.
package benchharness
