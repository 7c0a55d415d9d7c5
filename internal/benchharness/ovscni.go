package benchharness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/containernetworking/cni/libcni"
)

// OVSCNI is the peer the attach and burst benchmarks compare the agent with: ovs-cni's plugin
// (hack/tools/ovs-cni) with host-local IPAM, run through libcni as Multus runs a delegate, on a
// bench Node of its own whose bridge grows as the agent's does.
type OVSCNI struct {
	// Name is the configuration's name in reports: "ovs-cni" or "ovs-cni fast poll".
	Name string
	Node *Node
	cni  *CNI
	list *libcni.NetworkConfigList
}

// OVSCNIBridge is the bridge of an ovs-cni Node.
const OVSCNIBridge = "br-ovscni"

// OVSCNIFastPoll is ovs-cni's link_state_check_interval (ms) in its fast-poll configuration:
// it polls the port's link state every 10 ms instead of the shipped 600 ms, with as many retries
// as keep its patience at the shipped 3 s. What is left is its intrinsic cost.
const OVSCNIFastPoll = 10

// ovsCNIDefaultPatience is ovs-cni's shipped patience for the link state: 5 checks 600 ms apart.
const ovsCNIDefaultPatience = 5 * 600

// OVSCNINode makes a bench Node without an agent, creates ovs-cni's bridge on it (userspace
// datapath, as the agent's) and returns the plugin's runner; pollMS > 0 sets
// link_state_check_interval, 0 keeps the shipped configuration.
func (b *Bench) OVSCNINode(ctx context.Context, prefix string, pollMS int) (*OVSCNI, error) {
	node, err := b.Cluster.NewNode(ctx, prefix, false)
	if err != nil {
		return nil, err
	}
	b.Cleanup.Add(node.Close)
	if _, err := node.Vsctl(ctx, "add-br", OVSCNIBridge, "--", "set", "bridge", OVSCNIBridge, "datapath_type=netdev"); err != nil {
		return nil, err
	}
	plugin := map[string]any{"type": "ovs", "bridge": OVSCNIBridge, "vlan": 100, "socket_file": node.OVSDB,
		"ipam": map[string]any{"type": "host-local", "subnet": "10.197.0.0/16", "dataDir": filepath.Join(node.Dir, "host-local")}}
	name := "ovs-cni"
	if pollMS > 0 {
		plugin["link_state_check_interval"] = pollMS
		plugin["link_state_check_retries"] = ovsCNIDefaultPatience / pollMS
		name = "ovs-cni fast poll"
	}
	conf, err := jsonString(map[string]any{"cniVersion": CNIVersion, "name": "bench-ovs", "plugins": []any{plugin}})
	if err != nil {
		return nil, err
	}
	list, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		return nil, err
	}
	// ovs-cni logs every OVSDB operation on its standard error: into a file, kept with the
	// agents' logs, not into the benchmark's output.
	logs := filepath.Join(b.Cluster.OutputDir(), "logs")
	if err := os.MkdirAll(logs, 0o755); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(logs, node.Name+"-ovs-cni.log"))
	if err != nil {
		return nil, err
	}
	b.Cleanup.Add(func() { _ = logFile.Close() })
	return &OVSCNI{Name: name, Node: node, cni: newCNI(b.Bins, filepath.Join(node.Dir, "cni-cache"), logFile), list: list}, nil
}

// ovsCNIRuntime is the runtime configuration of the i-th ovs-cni attachment, in the namespace
// podNetNS: a secondary interface net1, as Multus asks for it.
func ovsCNIRuntime(i int, podNetNS string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{ContainerID: fmt.Sprintf("ovscni-%s-%d", podNetNS, i), NetNS: "/var/run/netns/" + podNetNS,
		IfName: "net1", Args: [][2]string{{"IgnoreUnknown", "true"}, {"K8S_POD_NAMESPACE", "bench"},
			{"K8S_POD_NAME", fmt.Sprintf("ovscni-%d", i)}}}
}

// Add runs ovs-cni's ADD of the i-th attachment and returns how long the plugin took (its
// host-local run included: ovs-cni executes it).
func (o *OVSCNI) Add(ctx context.Context, i int, podNetNS string) (time.Duration, error) {
	steps, err := o.cni.runList(ctx, o.Node, o.list, ovsCNIRuntime(i, podNetNS), true)
	if err != nil {
		return 0, fmt.Errorf("%s ADD %d: %w", o.Name, i, err)
	}
	return steps.Of("ovs"), nil
}

// Del runs ovs-cni's DEL of the i-th attachment.
func (o *OVSCNI) Del(ctx context.Context, i int, podNetNS string) (time.Duration, error) {
	steps, err := o.cni.runList(ctx, o.Node, o.list, ovsCNIRuntime(i, podNetNS), false)
	if err != nil {
		return 0, fmt.Errorf("%s DEL %d: %w", o.Name, i, err)
	}
	return steps.Of("ovs"), nil
}

// Ports counts the ports on ovs-cni's bridge.
func (o *OVSCNI) Ports(ctx context.Context) (int, error) {
	return countPorts(ctx, o.Node, OVSCNIBridge)
}
