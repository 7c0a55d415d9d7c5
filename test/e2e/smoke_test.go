package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestSmokeRealNodeIsReady checks that the real node registered itself and reports Ready.
func TestSmokeRealNodeIsReady(t *testing.T) {
	c := newTestCluster(t)
	node := c.node(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	n, err := c.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get node %s: %v", node.Name, err)
	}
	ready := false
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			ready = cond.Status == corev1.ConditionTrue
		}
	}
	if !ready {
		t.Errorf("node %s is not Ready: %+v", node.Name, n.Status.Conditions)
	}
	if got := n.Status.NodeInfo.ContainerRuntimeVersion; !strings.HasPrefix(got, "containerd://") {
		t.Errorf("node %s runtime = %q, want a containerd one (a real kubelet)", node.Name, got)
	}
}

// TestSmokePodOnRealNode runs a Pod on the real node and uses it the way tests will: logs and exec
// through the API server, then a graceful delete that the kubelet completes.
func TestSmokePodOnRealNode(t *testing.T) {
	c := newTestCluster(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "smoke-")
	marker := uniqueName("smoke-marker-")
	pod := c.createPod(t, c.testPod(t, ns, "box", node.Name, marker))
	if pod.Status.PodIP == "" {
		t.Fatalf("pod %s/%s runs without an IP", ns, pod.Name)
	}

	t.Run("kubectl logs shows the container's output", func(t *testing.T) {
		var out string
		err := eventually(20*time.Second, func() error {
			var err error
			out, err = c.tryKubectl("-n", ns, "logs", pod.Name)
			if err == nil && !strings.Contains(out, marker) {
				err = fmt.Errorf("no %q in the logs yet", marker)
			}
			return err
		})
		if err != nil {
			t.Fatalf("kubectl logs: %v; output %q", err, out)
		}
	})

	execCases := []struct {
		name    string
		command []string
		want    string
	}{
		{"kubectl exec runs a shell in the container", []string{"sh", "-c", "echo exec-$((6*7))"}, "exec-42"},
		{"kubectl exec sees the Pod IP on eth0", []string{"ip", "-4", "-o", "addr", "show", "dev", "eth0"}, pod.Status.PodIP + "/"},
	}
	for _, tc := range execCases {
		t.Run(tc.name, func(t *testing.T) {
			out := c.kubectl(t, append([]string{"-n", ns, "exec", pod.Name, "--"}, tc.command...)...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("kubectl exec %v = %q, want it to contain %q", tc.command, out, tc.want)
			}
		})
	}

	t.Run("graceful delete completes", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), podDeleteTimeout+apiCallTimeout)
		defer cancel()
		if err := c.deletePod(ctx, ns, pod.Name); err != nil {
			t.Fatalf("delete pod %s/%s: %v", ns, pod.Name, err)
		}
	})
}

// TestSmokeVLANAcrossFabric proves the fabric with hand-made interfaces (the agent is not involved):
// an access port of VLAN 100 on node-1 and one on node-2 talk through the nodes' uplinks and the
// fabric, tagged on the wire, and reach the external host of VLAN 100, while VLAN 200 stays apart
// even where it uses addresses of the same subnet.
func TestSmokeVLANAcrossFabric(t *testing.T) {
	c := newTestCluster(t)
	node1, node2 := c.node(t, 1), c.node(t, 2)
	fabricNetNS := c.FabricNetNS
	ext100, ext200 := c.ext(t, 100).IP.String(), c.ext(t, 200).IP.String()

	br1 := addThrowawayBridge(t, node1, true)
	br2 := addThrowawayBridge(t, node2, true)
	// Each "pod" also holds an address in the other VLAN's subnet, so that only VLAN isolation (and no
	// missing route) can stop traffic to the other VLAN.
	podA := addVethPod(t, node1, br1, 100, "198.18.100.11/24", "198.18.200.11/24")
	podB := addVethPod(t, node2, br2, 100, "198.18.100.12/24")
	podC := addVethPod(t, node2, br2, 200, "198.18.100.13/24", "198.18.200.13/24")

	pingCases := []struct {
		name      string
		from      *vethPod
		to        string
		wantReply bool
	}{
		{"VLAN 100 on node-1 reaches VLAN 100 on node-2", podA, "198.18.100.12", true},
		{"VLAN 100 on node-2 reaches VLAN 100 on node-1", podB, "198.18.100.11", true},
		{"VLAN 100 on node-2 reaches the external host of VLAN 100", podB, ext100, true},
		{"VLAN 100 on node-1 reaches the external host of VLAN 100", podA, ext100, true},
		{"VLAN 200 on node-2 reaches the external host of VLAN 200", podC, ext200, true},
		{"VLAN 100 cannot reach VLAN 200 on another node in the same subnet", podA, "198.18.100.13", false},
		{"VLAN 100 cannot reach VLAN 200 on the same node in the same subnet", podB, "198.18.100.13", false},
		{"VLAN 100 cannot reach the external host of VLAN 200", podA, ext200, false},
		{"VLAN 200 cannot reach the external host of VLAN 100", podC, ext100, false},
	}
	for _, tc := range pingCases {
		t.Run(tc.name, func(t *testing.T) {
			err := ping(tc.from.NetNS, tc.to)
			if tc.wantReply && err != nil {
				t.Errorf("no reply from %s: %v", tc.to, err)
			}
			if !tc.wantReply && err == nil {
				t.Errorf("%s answered across VLANs", tc.to)
			}
		})
	}

	captureCases := []struct {
		name     string
		node     clusterNode
		from     *vethPod
		fromIP   string
		to       string
		wantVLAN string
	}{
		{"node-1's uplink carries VLAN 100 tagged", node1, podA, "198.18.100.11", "198.18.100.12", "vlan 100"},
		{"node-2's uplink carries VLAN 200 tagged", node2, podC, "198.18.200.13", ext200, "vlan 200"},
	}
	for _, tc := range captureCases {
		t.Run(tc.name, func(t *testing.T) {
			capture := startCapture(t, fabricNetNS, tc.node.FabricPort)
			if err := ping(tc.from.NetNS, tc.to); err != nil {
				t.Fatalf("ping %s: %v", tc.to, err)
			}
			frames := capture.stop()
			var fromPod []string
			for _, frame := range frames {
				if strings.Contains(frame, tc.fromIP) {
					fromPod = append(fromPod, frame)
				}
			}
			if len(fromPod) == 0 {
				t.Fatalf("no frame from %s on %s; captured:\n%s", tc.fromIP, tc.node.FabricPort, strings.Join(frames, "\n"))
			}
			for _, frame := range fromPod {
				if !strings.Contains(frame, "802.1Q") || !strings.Contains(frame, tc.wantVLAN+",") {
					t.Errorf("frame from %s without %s tag on %s: %s", tc.fromIP, tc.wantVLAN, tc.node.FabricPort, frame)
				}
			}
		})
	}
}

// TestSmokeManagementNetwork checks what an agent running inside a simulated node's namespace relies
// on: a management interface that carries the node's address and default route, and an API server
// reachable through it with the node's own kubeconfig. node-1 reaches the same address from the root
// namespace.
func TestSmokeManagementNetwork(t *testing.T) {
	c := newTestCluster(t)
	node1, node2 := c.node(t, 1), c.node(t, 2)
	gateway := c.MgmtGateway.String()
	if node2.MgmtIf == node2.Uplink {
		t.Fatalf("node-2's management interface and uplink are both %s", node2.Uplink)
	}

	cases := []struct {
		name string
		node clusterNode
		argv []string
		want string
	}{
		{"node-2's management interface holds its address", node2,
			[]string{"ip", "-4", "-o", "addr", "show", "dev", node2.MgmtIf}, " " + node2.IP.String() + "/"},
		{"node-2's default route is via node-1 on its management interface", node2,
			[]string{"ip", "-4", "route", "show", "default"}, "default via " + gateway + " dev " + node2.MgmtIf + " "},
		{"the API server is ready for node-2's kubeconfig from inside node-2", node2,
			c.nodeKubectl(node2, "get", "--raw", "/readyz"), "ok"},
		{"node-2's kubeconfig authenticates as node-2", node2,
			c.nodeKubectl(node2, "auth", "whoami", "-o", "jsonpath={.status.userInfo.username}"), "system:node:" + node2.Name},
		{"the API server is ready for node-1's kubeconfig from the root namespace", node1,
			c.nodeKubectl(node1, "get", "--raw", "/readyz"), "ok"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := mustRun(t, netnsCommand(tc.node.NetNS, tc.argv...)...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("%s = %q, want it to contain %q", strings.Join(tc.argv, " "), out, tc.want)
			}
		})
	}
}
