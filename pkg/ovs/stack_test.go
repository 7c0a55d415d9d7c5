package ovs_test

// Helpers for the tests that run against real ovsdb-server and ovs-vswitchd (teststack.StartOVS).
// Everything they create lives in the OVS daemons' network namespace or in per-test "pod"
// namespaces beside it, under names unique to this process.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/ovs"
)

var nameCounter atomic.Uint32

// uniqueName returns prefix plus a suffix unique on this machine for this process, at most 15
// bytes long (a valid interface name).
func uniqueName(prefix string) string {
	name := fmt.Sprintf("%s%x%x", prefix, os.Getpid()&0xffff, nameCounter.Add(1))
	if len(name) > 15 {
		panic("name too long: " + name)
	}
	return name
}

// stack is one private OVS with a connected client.
type stack struct {
	ovs    *teststack.OVS
	client *ovs.Client
}

func netnsPath(name string) string { return "/var/run/netns/" + name }

// startStack starts private OVS daemons and connects a client to them.
func startStack(t *testing.T, opts ...ovs.Option) *stack {
	t.Helper()
	o := teststack.StartOVS(t)
	// Host-side veths must not send IPv6 DAD/MLD/RS frames into the switch.
	mustRun(t, "ip", "netns", "exec", o.NetNS, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	return &stack{ovs: o, client: connect(t, o, opts...)}
}

func connect(t *testing.T, o *teststack.OVS, opts ...ovs.Option) *ovs.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := ovs.Connect(ctx, o.Socket, append([]ovs.Option{ovs.WithHostNetNS(netnsPath(o.NetNS))}, opts...)...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// bridge ensures a fresh userspace-datapath bridge.
func (s *stack) bridge(t *testing.T) string {
	t.Helper()
	name := uniqueName("pvbr")
	if err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: name, DatapathType: ovs.DatapathNetdev}); err != nil {
		t.Fatalf("EnsureBridge: %v", err)
	}
	return name
}

// vethInOVSNetNS creates a veth pair with both ends in the OVS namespace and returns the first
// end's name; the second is name+"p".
func (s *stack) vethInOVSNetNS(t *testing.T, prefix string) (string, string) {
	t.Helper()
	a := uniqueName(prefix)
	b := a + "p"
	mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "add", a, "type", "veth", "peer", "name", b)
	t.Cleanup(func() { _ = exec.Command("ip", "-n", s.ovs.NetNS, "link", "del", a).Run() })
	mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "set", a, "up")
	mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "set", b, "up")
	return a, b
}

// pod is a network namespace with one interface whose peer is in the OVS namespace.
type pod struct {
	netns   string
	ifName  string
	host    string // the host-side veth, in the OVS namespace
	address string // CIDR, empty when none
}

// newNetNS creates a network namespace without IPv6, removed when the test ends.
func newNetNS(t *testing.T, prefix string) string {
	t.Helper()
	name := uniqueName(prefix)
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	mustRun(t, "ip", "netns", "exec", name, "sysctl", "-qw",
		"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// newPod creates a pod namespace whose eth1 is wired to a host-side veth in the OVS namespace.
func (s *stack) newPod(t *testing.T, address string) pod {
	t.Helper()
	p := pod{netns: newNetNS(t, "pvpod"), ifName: "eth1", host: uniqueName("pvh"), address: address}
	mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "add", p.host, "type", "veth", "peer", "name", p.ifName, "netns", p.netns)
	t.Cleanup(func() { _ = exec.Command("ip", "-n", s.ovs.NetNS, "link", "del", p.host).Run() })
	if address != "" {
		mustRun(t, "ip", "-n", p.netns, "addr", "add", address, "dev", p.ifName)
	}
	mustRun(t, "ip", "-n", p.netns, "link", "set", p.ifName, "up")
	mustRun(t, "ip", "-n", s.ovs.NetNS, "link", "set", p.host, "up")
	return p
}

func (p pod) ip() string { return strings.Split(p.address, "/")[0] }

// owner returns a PortOwner that names this pod.
func (p pod) owner(network string) ovs.PortOwner {
	return ovs.PortOwner{
		PodNamespace: "ns-" + p.netns, PodName: p.netns, PodUID: "uid-" + p.netns,
		ContainerID: "ctr-" + p.netns, IfName: p.ifName, Network: network,
		Addresses: func() []string {
			if p.address == "" {
				return nil
			}
			return []string{p.address}
		}(),
	}
}

// plug makes the pod's host-side veth an access port of vlan.
func (s *stack) plug(t *testing.T, bridge string, p pod, vlan uint16) ovs.PodPort {
	t.Helper()
	port, err := s.client.CreateAccessPort(testContext(t), ovs.PortSpec{
		Bridge: bridge, Name: p.host, VLAN: vlan, Owner: p.owner("networks/vlan" + fmt.Sprint(vlan)),
	})
	if err != nil {
		t.Fatalf("CreateAccessPort(%s, VLAN %d): %v", p.host, vlan, err)
	}
	return port
}

// pingOnce reports whether one ping from src to dst is answered within a second.
func pingOnce(src pod, dst string) bool {
	return exec.Command("ip", "netns", "exec", src.netns, "ping", "-c", "1", "-W", "1", dst).Run() == nil
}

// pingEventually retries a ping a few times, since the first may be spent on ARP or on a
// vswitchd that is still coming up.
func pingEventually(src pod, dst string) bool {
	for range 10 {
		if pingOnce(src, dst) {
			return true
		}
	}
	return false
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// vsctlField returns one column of one row, as ovs-vsctl prints it, for assertions.
func (s *stack) vsctlField(t *testing.T, table, record, column string) string {
	t.Helper()
	return strings.TrimSpace(s.ovs.Vsctl(t, "get", table, record, column))
}

func requireRoot(t *testing.T) { teststack.RequireRoot(t) }

// runQuiet runs a command whose failure the caller tolerates (cleanup, negative checks).
func runQuiet(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
