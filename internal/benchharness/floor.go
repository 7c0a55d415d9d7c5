package benchharness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/podvlan/podvlan/pkg/ovs"
)

// Floor is the least work one secondary attachment needs, done by the benchmark itself with no
// agent, one step after the other: a veth created with its peer in the Pod's namespace, an
// address on the peer, both ends up, then one OVSDB transaction adding the access port and the
// wait until ovs-vswitchd has given it an OpenFlow port number. It runs on a Node of its own, so
// that its bridge grows exactly as the agent's does.
type Floor struct {
	node   *Node
	client *ovs.Client
}

// FloorBridge is the floor's bridge.
const FloorBridge = "pvfloor"

// NewFloor connects to the Node's OVSDB and creates the floor's bridge.
func NewFloor(ctx context.Context, node *Node) (*Floor, error) {
	connectCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	client, err := ovs.Connect(connectCtx, node.OVSDB, ovs.WithHostNetNS(node.NetNSPath()))
	if err != nil {
		return nil, err
	}
	if err := client.EnsureBridge(ctx, ovs.BridgeConfig{Name: FloorBridge, DatapathType: ovs.DatapathNetdev}); err != nil {
		client.Close()
		return nil, err
	}
	return &Floor{node: node, client: client}, nil
}

// Close ends the OVSDB session (the Node's Close removes the bridge).
func (f *Floor) Close() { f.client.Close() }

// FloorPort names the host end and port of the i-th floor attachment.
func FloorPort(i int) string { return fmt.Sprintf("pvf%d", i) }

// Add attaches the i-th floor "Pod" (the namespace podNetNS) and returns how long it took.
func (f *Floor) Add(ctx context.Context, i int, podNetNS string) (time.Duration, error) {
	host := FloorPort(i)
	start := time.Now()
	err := f.node.Do(func() error {
		podNS, err := netns.GetFromPath("/var/run/netns/" + podNetNS)
		if err != nil {
			return fmt.Errorf("open %s: %w", podNetNS, err)
		}
		defer podNS.Close()
		veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: host, MTU: 1500}, PeerName: "eth1",
			PeerNamespace: netlink.NsFd(int(podNS))}
		if err := netlink.LinkAdd(veth); err != nil {
			return fmt.Errorf("add veth %s: %w", host, err)
		}
		inPod, err := netlink.NewHandleAt(podNS)
		if err != nil {
			return err
		}
		defer inPod.Close()
		peer, err := inPod.LinkByName("eth1")
		if err != nil {
			return err
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: net.IPv4(10, 199, byte(i/250), byte(2+i%250)), Mask: net.CIDRMask(16, 32)}}
		if err := inPod.AddrAdd(peer, addr); err != nil {
			return fmt.Errorf("add address: %w", err)
		}
		if err := inPod.LinkSetUp(peer); err != nil {
			return err
		}
		return netlink.LinkSetUp(veth)
	})
	if err != nil {
		return 0, err
	}
	_, err = f.client.CreateAccessPort(ctx, ovs.PortSpec{Bridge: FloorBridge, Name: host, VLAN: 100,
		Owner: ovs.PortOwner{PodNamespace: "bench", PodName: fmt.Sprintf("floor-%d", i), PodUID: fmt.Sprintf("uid-%d", i),
			ContainerID: fmt.Sprintf("floor-%d", i), IfName: "eth1", Network: "bench/floor"}})
	if err != nil {
		return 0, fmt.Errorf("floor port %s: %w", host, err)
	}
	return time.Since(start), nil
}

// Del removes the i-th floor attachment: the port, then the veth.
func (f *Floor) Del(ctx context.Context, i int) (time.Duration, error) {
	host := FloorPort(i)
	start := time.Now()
	if err := f.client.DeletePort(ctx, host); err != nil {
		return 0, err
	}
	err := f.node.Do(func() error {
		link, err := netlink.LinkByName(host)
		var notFound netlink.LinkNotFoundError
		if errors.As(err, &notFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return netlink.LinkDel(link)
	})
	return time.Since(start), err
}
