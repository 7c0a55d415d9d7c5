package benchharness

import (
	"context"
	"fmt"
)

// Bench is how every benchmark program starts: root checked, the local cluster, the project's
// binaries, a namespace for its Pods, and the steps that undo everything it makes.
type Bench struct {
	Cluster   *Cluster
	Bins      Binaries
	Namespace string
	Cleanup   Cleanup
}

// Start prepares the benchmark called name. The caller runs b.Cleanup.Run when it is done; on
// error Start has undone what it made.
func Start(ctx context.Context, name string) (_ *Bench, err error) {
	if err := RequireRoot(); err != nil {
		return nil, err
	}
	b := &Bench{}
	defer func() {
		if err != nil {
			b.Cleanup.Run()
		}
	}()
	if b.Cluster, err = LoadCluster(ctx); err != nil {
		return nil, err
	}
	if b.Bins, err = b.Cluster.BuildBinaries(ctx); err != nil {
		return nil, err
	}
	if b.Namespace, err = b.Cluster.CreateNamespace(ctx, "pvbench-"+name+"-"); err != nil {
		return nil, err
	}
	b.Cleanup.Add(func() { _ = b.Cluster.DeleteNamespace(context.Background(), b.Namespace) })
	return b, nil
}

// AgentNode makes a bench node running an agent, with one VLAN network per entry of vlans, named
// net-1, net-2, ... (or vlan100 for a single network of VLAN 100, as the attach benchmarks name it).
func (b *Bench) AgentNode(ctx context.Context, prefix string, vlans ...int) (*Node, *Agent, []*Network, error) {
	node, err := b.Cluster.NewNode(ctx, prefix, true)
	if err != nil {
		return nil, nil, nil, err
	}
	b.Cleanup.Add(node.Close)
	var networks []*Network
	for i, vlan := range vlans {
		name := fmt.Sprintf("net-%d", i+1)
		if len(vlans) == 1 {
			name = fmt.Sprintf("vlan%d", vlan)
		}
		n, err := b.Cluster.CreateNetwork(ctx, b.Namespace, name, vlan)
		if err != nil {
			return nil, nil, nil, err
		}
		b.Cleanup.Add(func() { b.Cluster.DeleteNetwork(n) })
		networks = append(networks, n)
	}
	agent, err := node.StartAgent(ctx, b.Bins)
	if err != nil {
		return nil, nil, nil, err
	}
	b.Cleanup.Add(agent.Stop)
	return node, agent, networks, nil
}

// FloorNode makes a bench node without an agent and the floor program on it.
func (b *Bench) FloorNode(ctx context.Context, prefix string) (*Floor, error) {
	node, err := b.Cluster.NewNode(ctx, prefix, false)
	if err != nil {
		return nil, err
	}
	b.Cleanup.Add(node.Close)
	floor, err := NewFloor(ctx, node)
	if err != nil {
		return nil, err
	}
	b.Cleanup.Add(floor.Close)
	return floor, nil
}

// Lineup is what the latency benchmarks take turns on: a Node with our agent and its VLAN 100
// network, the floor's Node, and ovs-cni's Nodes as shipped and with the fast poll.
type Lineup struct {
	AgentNode *Node
	Agent     *Agent
	Network   *Network
	Floor     *Floor
	Shipped   *OVSCNI
	Fast      *OVSCNI
}

// Lineup makes the Nodes of a Lineup; agentPrefix names the agent's Node.
func (b *Bench) Lineup(ctx context.Context, agentPrefix string) (*Lineup, error) {
	l := &Lineup{}
	node, agent, networks, err := b.AgentNode(ctx, agentPrefix, 100)
	if err != nil {
		return nil, err
	}
	l.AgentNode, l.Agent, l.Network = node, agent, networks[0]
	if l.Floor, err = b.FloorNode(ctx, "pvbf-"); err != nil {
		return nil, err
	}
	if l.Shipped, err = b.OVSCNINode(ctx, "pvbo-", 0); err != nil {
		return nil, err
	}
	if l.Fast, err = b.OVSCNINode(ctx, "pvbq-", OVSCNIFastPoll); err != nil {
		return nil, err
	}
	return l, nil
}
