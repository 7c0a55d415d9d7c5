package e2e

// Secondary networks of running Pods: the annotation added after the sandbox was created (the
// first attachment) and, with SecondaryNetworkHotplug, entries added and removed later, with the
// podvlan.io/SecondaryNetworksReady condition saying where things are.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/agent/podnetworks"
)

// firstAttachDeadline is the promise: a running Pod annotated for the first time has its
// interfaces within 2 s.
const firstAttachDeadline = 2 * time.Second

// setNetworks sets (or, with "", removes) the Pod's networks annotation.
func (c *testCluster) setNetworks(t *testing.T, s *sandbox, annotation string) {
	t.Helper()
	var value any = annotation
	if annotation == "" {
		value = nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{nadv1.NetworkAttachmentAnnot: value}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	if _, err := c.client.CoreV1().Pods(s.Pod.Namespace).Patch(ctx, s.Pod.Name, k8stypes.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatalf("annotate Pod %s/%s with %q: %v", s.Pod.Namespace, s.Pod.Name, annotation, err)
	}
}

// podCondition returns the Pod's SecondaryNetworksReady condition, nil when it has none.
func (c *testCluster) podCondition(s *sandbox) (*corev1.PodCondition, *corev1.Pod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	pod, err := c.client.CoreV1().Pods(s.Pod.Namespace).Get(ctx, s.Pod.Name, metav1.GetOptions{})
	if err != nil {
		return nil, nil, err
	}
	return podnetworks.FindCondition(pod, podnetworks.ConditionType), pod, nil
}

// interfaceNames lists the sandbox's interfaces other than lo and eth0.
func interfaceNames(s *sandbox) ([]string, error) {
	out, err := tryRun("ip", "-n", s.NetNS, "-o", "link", "show")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name := strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0]
		if name != "lo" && name != "eth0" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names, nil
}

// waitNetworks waits until the sandbox has exactly the interfaces ifNames, each with an IPv4
// address, the condition is status/reason, and network-status lists exactly ifNames.
func (c *testCluster) waitNetworks(t *testing.T, s *sandbox, timeout time.Duration, status corev1.ConditionStatus, reason string, ifNames ...string) time.Duration {
	t.Helper()
	start := time.Now()
	want := slices.Sorted(slices.Values(ifNames))
	err := eventually(timeout, func() error {
		have, err := interfaceNames(s)
		if err != nil {
			return err
		}
		if !slices.Equal(have, want) {
			return fmt.Errorf("interfaces %v, want %v", have, want)
		}
		for _, name := range ifNames {
			if addrs := podAddresses(t, s, name); len(addrs) == 0 {
				return fmt.Errorf("%s has no address yet", name)
			}
		}
		cond, pod, err := c.podCondition(s)
		if err != nil {
			return err
		}
		if cond == nil || cond.Status != status || cond.Reason != reason {
			return fmt.Errorf("condition %+v, want %s/%s", cond, status, reason)
		}
		var entries []nadv1.NetworkStatus
		if v := pod.Annotations[nadv1.NetworkStatusAnnot]; v != "" {
			if err := json.Unmarshal([]byte(v), &entries); err != nil {
				return err
			}
		}
		var listed []string
		for _, e := range entries {
			listed = append(listed, e.Interface)
		}
		slices.Sort(listed)
		if !slices.Equal(listed, want) {
			return fmt.Errorf("network-status lists %v, want %v", listed, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("Pod %s/%s: %v", s.Pod.Namespace, s.Pod.Name, err)
	}
	return time.Since(start)
}

// runningSandbox is a Pod without networks whose sandbox went through the chained ADD (the shim
// records it), DELeted when the test ends.
func (c *testCluster) runningSandbox(t *testing.T, a *agentProcess, namespace, name string) *sandbox {
	t.Helper()
	s := c.newSandbox(t, namespace, name, a.node, "")
	if _, err := a.addChained(t, s, "1.0.0"); err != nil {
		t.Fatalf("CNI ADD of %s: %v", name, err)
	}
	t.Cleanup(func() {
		if err := a.delChained(t, s, "1.0.0"); err != nil {
			t.Errorf("CNI DEL of %s: %v", name, err)
		}
	})
	// The controller trusts a sandbox record once it is older than SettleTime.
	time.Sleep(podnetworks.SettleTime)
	return s
}

// tcpSession is a TCP connection to a listener in a network namespace of the host, kept open.
type tcpSession struct {
	client   *exec.Cmd
	server   *exec.Cmd
	stdin    io.WriteCloser
	mu       sync.Mutex
	received []string
}

// openTCPSession connects from the sandbox's namespace fromNetns to toIP:port, where a listener
// runs in toNetns, and checks that a first line gets through.
func openTCPSession(t *testing.T, fromNetns, toNetns, toIP string, port int) *tcpSession {
	t.Helper()
	return startTCPSession(t, toNetns, port, 5*time.Second, 2*time.Second,
		fmt.Sprintf("to %s:%d", toIP, port), netnsCommand(fromNetns, "nc", "-n", toIP, fmt.Sprint(port)))
}

// startTCPSession starts the listener (the host's nc) in toNetns, then the client command until a
// first line gets through within connect (each try waits up to deliver for the line); what names
// the session in a failure.
func startTCPSession(t *testing.T, toNetns string, port int, connect, deliver time.Duration, what string, client []string) *tcpSession {
	t.Helper()
	ts := &tcpSession{}
	srv := netnsCommand(toNetns, "nc", "-l", "-k", "-n", fmt.Sprint(port))
	ts.server = exec.Command(srv[0], srv[1:]...)
	out, err := ts.server.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := ts.server.Start(); err != nil {
		t.Fatalf("start the listener: %v", err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			ts.mu.Lock()
			ts.received = append(ts.received, sc.Text())
			ts.mu.Unlock()
		}
	}()
	stopClient := func() {
		if ts.client != nil {
			_ = ts.stdin.Close()
			_ = ts.client.Process.Kill()
			_ = ts.client.Wait()
		}
	}
	t.Cleanup(func() {
		stopClient()
		_ = ts.server.Process.Kill()
		_ = ts.server.Wait()
	})
	// The listener needs a moment; the client is started again until a line gets through.
	err = eventually(connect, func() error {
		stopClient()
		ts.client = exec.Command(client[0], client[1:]...)
		if ts.stdin, err = ts.client.StdinPipe(); err != nil {
			return err
		}
		if err := ts.client.Start(); err != nil {
			return err
		}
		return ts.send("hello", deliver)
	})
	if err != nil {
		t.Fatalf("open a TCP session %s: %v", what, err)
	}
	return ts
}

// send writes a line on the session and waits until the listener got it.
func (ts *tcpSession) send(line string, timeout time.Duration) error {
	if _, err := fmt.Fprintln(ts.stdin, line); err != nil {
		return fmt.Errorf("write %q: %w", line, err)
	}
	return eventually(timeout, func() error {
		ts.mu.Lock()
		defer ts.mu.Unlock()
		if slices.Contains(ts.received, line) {
			return nil
		}
		return fmt.Errorf("the listener has not received %q (got %v)", line, ts.received)
	})
}

// TestAgentRunningPodHotplug: with SecondaryNetworkHotplug on, a running Pod gets its first
// network from the annotation within 2 s, then gets a network added while a TCP session over
// the first one goes on, loses it again with its address and port, and loses everything when
// the annotation goes.
func TestAgentRunningPodHotplug(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-hotplug-")
	p100, p200 := vlanPools(t, c, 70, 79)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	c.createNAD(t, ns, "vlan200", teststack.VLANNetworkConfig(0, p200))
	cfg := teststack.DefaultAgentConfig(node.Uplink)
	cfg.FeatureGates["SecondaryNetworkHotplug"] = true
	a := c.startAgent(t, node, cfg)
	s := c.runningSandbox(t, a, ns, "running")

	if have, err := interfaceNames(s); err != nil || len(have) != 0 {
		t.Fatalf("before the annotation: interfaces %v (%v), want none", have, err)
	}
	c.setNetworks(t, s, "vlan100")
	took := c.waitNetworks(t, s, firstAttachDeadline, corev1.ConditionTrue, podnetworks.ReasonAttached, "eth1")
	t.Logf("first annotation to interface, address, network-status and condition: %v", took)
	if err := ping(s.NetNS, c.ext(t, 100).IP.String()); err != nil {
		t.Errorf("eth1 -> external VLAN-100 host across the fabric: %v", err)
	}
	if ev := c.podEvents(t, ns, s.Pod.Name); !containsPrefix(ev, "NetworkAttached: ") {
		t.Errorf("events %v, want NetworkAttached", ev)
	}

	session := openTCPSession(t, s.NetNS, c.ext(t, 100).NetNS, c.ext(t, 100).IP.String(), 5701)
	c.setNetworks(t, s, "vlan100,vlan200@net2")
	c.waitNetworks(t, s, 10*time.Second, corev1.ConditionTrue, podnetworks.ReasonAttached, "eth1", "net2")
	if err := session.send("after hot-plug", 5*time.Second); err != nil {
		t.Errorf("the TCP session over eth1 did not survive adding net2: %v", err)
	}
	if err := ping(s.NetNS, c.ext(t, 200).IP.String()); err != nil {
		t.Errorf("net2 -> external VLAN-200 host: %v", err)
	}
	if ports := nodePodPorts(t, node); len(ports) != 2 {
		t.Errorf("ports %v, want two", ports)
	}

	c.setNetworks(t, s, "vlan100")
	c.waitNetworks(t, s, 10*time.Second, corev1.ConditionTrue, podnetworks.ReasonAttached, "eth1")
	if err := eventually(5*time.Second, func() error {
		if left := c.poolAllocations(t, p200); len(left) != 0 {
			return fmt.Errorf("IPPool %s still holds %+v", p200, left)
		}
		if ports := nodePodPorts(t, node); len(ports) != 1 {
			return fmt.Errorf("ports %v, want eth1's only", ports)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
	if err := session.send("after unplug", 5*time.Second); err != nil {
		t.Errorf("the TCP session over eth1 did not survive removing net2: %v", err)
	}
	if ev := c.podEvents(t, ns, s.Pod.Name); !containsPrefix(ev, podnetworks.EventDetached+": ") {
		t.Errorf("events %v, want %s", ev, podnetworks.EventDetached)
	}

	c.setNetworks(t, s, "")
	if err := eventually(10*time.Second, func() error {
		have, err := interfaceNames(s)
		if err != nil || len(have) != 0 {
			return fmt.Errorf("interfaces %v (%v), want none", have, err)
		}
		if ports := nodePodPorts(t, node); len(ports) != 0 {
			return fmt.Errorf("ports %v, want none", ports)
		}
		if left := c.poolAllocations(t, p100); len(left) != 0 {
			return fmt.Errorf("IPPool %s still holds %+v", p100, left)
		}
		cond, _, err := c.podCondition(s)
		if err != nil || cond == nil || cond.Reason != podnetworks.ReasonNoNetworks {
			return fmt.Errorf("condition %+v (%v), want %s", cond, err, podnetworks.ReasonNoNetworks)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// TestAgentRunningPodMissingNetwork: a running Pod annotated with a network whose
// NetworkAttachmentDefinition does not exist yet gets the condition False with the reason, and
// the network once the definition is created, without being recreated.
func TestAgentRunningPodMissingNetwork(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	nodes := c.nodes(t)
	node := nodes[len(nodes)-1] // a simulated Node when there is one
	ns := c.createNamespace(t, "e2e-latenad-")
	p100, _ := vlanPools(t, c, 80, 84)
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	s := c.runningSandbox(t, a, ns, "waiting")

	c.setNetworks(t, s, "late100")
	if err := eventually(5*time.Second, func() error {
		cond, _, err := c.podCondition(s)
		if err != nil {
			return err
		}
		if cond == nil || cond.Status != corev1.ConditionFalse || cond.Reason != podnetworks.ReasonNADNotFound {
			return fmt.Errorf("condition %+v, want False/%s", cond, podnetworks.ReasonNADNotFound)
		}
		if !strings.Contains(cond.Message, ns+"/late100") {
			return fmt.Errorf("condition message %q does not name the network", cond.Message)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	c.createNAD(t, ns, "late100", teststack.VLANNetworkConfig(0, p100))
	c.waitNetworks(t, s, 10*time.Second, corev1.ConditionTrue, podnetworks.ReasonAttached, "eth1")
	if err := ping(s.NetNS, c.ext(t, 100).IP.String()); err != nil {
		t.Errorf("eth1 -> external VLAN-100 host: %v", err)
	}
}

// TestAgentRunningPodGateOff: without SecondaryNetworkHotplug the first annotation of a running
// Pod is still applied (the seed's rule), but a later change is refused with an Event, and
// nothing changes.
func TestAgentRunningPodGateOff(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	nodes := c.nodes(t)
	node := nodes[len(nodes)-1]
	ns := c.createNamespace(t, "e2e-nohotplug-")
	p100, p200 := vlanPools(t, c, 85, 89)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	c.createNAD(t, ns, "vlan200", teststack.VLANNetworkConfig(0, p200))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	s := c.runningSandbox(t, a, ns, "fixed")

	c.setNetworks(t, s, "vlan100")
	c.waitNetworks(t, s, firstAttachDeadline, corev1.ConditionTrue, podnetworks.ReasonAttached, "eth1")
	before := podAddress(t, s, "eth1")

	c.setNetworks(t, s, "vlan100,vlan200@net2")
	if err := eventually(5*time.Second, func() error {
		ev := c.podEvents(t, ns, s.Pod.Name)
		for _, e := range ev {
			if strings.HasPrefix(e, podnetworks.EventChangeNotApplied+": ") && strings.Contains(e, "SecondaryNetworkHotplug") &&
				strings.Contains(e, "net2") {
				return nil
			}
		}
		return fmt.Errorf("events %v, want %s naming net2 and the gate", ev, podnetworks.EventChangeNotApplied)
	}); err != nil {
		t.Fatal(err)
	}
	c.waitNetworks(t, s, 5*time.Second, corev1.ConditionTrue, podnetworks.ReasonChangeNotApplied, "eth1")
	if after := podAddress(t, s, "eth1"); after != before {
		t.Errorf("eth1's address changed from %s to %s", before, after)
	}
	c.waitPoolHolders(t, p200, holdNone()) // a refused change allocates nothing
}

// TestAgentRunningPodRestartMidHotplug: the agent killed while it attaches a network to a running
// Pod leaves no port, veth or address behind once it is back, and the Pod converges to its
// annotation.
func TestAgentRunningPodRestartMidHotplug(t *testing.T) {
	c := newTestCluster(t)
	c.InstallCRDs(t)
	nodes := c.nodes(t)
	node := nodes[len(nodes)-1]
	ns := c.createNamespace(t, "e2e-hotplugkill-")
	p100, p200 := vlanPools(t, c, 90, 94)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	c.createNAD(t, ns, "vlan200", teststack.VLANNetworkConfig(0, p200))
	cfg := teststack.DefaultAgentConfig(node.Uplink)
	cfg.FeatureGates["SecondaryNetworkHotplug"] = true
	a := c.startAgent(t, node, cfg)
	s := c.runningSandbox(t, a, ns, "killed")
	c.setNetworks(t, s, "vlan100")
	c.waitNetworks(t, s, firstAttachDeadline, corev1.ConditionTrue, podnetworks.ReasonAttached, "eth1")

	// Kill the agent at a few points of adding net2 (the informer's delivery and the attach take
	// tens of milliseconds here): every round must converge.
	for round, delay := range []time.Duration{0, 20 * time.Millisecond, 60 * time.Millisecond} {
		c.setNetworks(t, s, "vlan100,vlan200@net2")
		time.Sleep(delay)
		a.Kill()
		a.start(t)
		c.waitNetworks(t, s, 15*time.Second, corev1.ConditionTrue, podnetworks.ReasonAttached, "eth1", "net2")
		if err := eventually(10*time.Second, func() error {
			if ports := nodePodPorts(t, node); len(ports) != 2 {
				return fmt.Errorf("round %d: ports %v, want two", round, ports)
			}
			if veths := hostVeths(t, node); len(veths) != 2 {
				return fmt.Errorf("round %d: veths %v, want two", round, veths)
			}
			if n := len(c.poolAllocations(t, p200)); n != 1 {
				return fmt.Errorf("round %d: IPPool %s holds %d addresses, want one", round, p200, n)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		c.setNetworks(t, s, "vlan100")
		c.waitNetworks(t, s, 10*time.Second, corev1.ConditionTrue, podnetworks.ReasonAttached, "eth1")
	}
}
