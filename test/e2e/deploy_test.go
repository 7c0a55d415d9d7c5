package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/cniinstall"
)

// TestDeployManifests installs build/yamls/crds.yml and antrea.yml on the local cluster as a user
// does, turns the gates on by editing the ConfigMap, and runs the examples of docs/examples,
// verbatim, as real Pods on node-1: the kubelet and containerd call the antrea plugin that the
// agent chained into node-1's primary CNI configuration. At the end antrea.yml is deleted and
// node-1's CNI configuration must be as it was.
func TestDeployManifests(t *testing.T) {
	c := newTestCluster(t)
	d := newDeployment(t, c)
	node := d.node
	uplink := node.Uplink
	ext100, ext200 := c.ext(t, 100).IP.String(), c.ext(t, 200).IP.String()
	t.Cleanup(func() { d.uninstall(t) })
	d.install(t)

	t.Run("the install step copies the plugin; with SecondaryNetwork off antrea is not chained", func(t *testing.T) {
		if st, err := os.Stat(cniPluginBinary); err != nil || st.Mode().Perm()&0o111 == 0 {
			t.Errorf("%s is not an executable: %v", cniPluginBinary, err)
		}
		if data, err := os.ReadFile(d.conflistPath); err != nil || string(data) != string(d.conflistBytes) {
			t.Errorf("%s is\n%s\nwant it untouched (%v):\n%s", d.conflistPath, data, err, d.conflistBytes)
		}
	})

	t.Run("the agent runs on the real node only: simulated nodes are labelled podvlan.dev/agent=false", func(t *testing.T) {
		pods := d.agentPods(t)
		var nodes []string
		for _, p := range pods {
			nodes = append(nodes, p.Spec.NodeName)
		}
		if !slices.Equal(nodes, []string{node.Name}) {
			t.Errorf("agent Pods run on %v, want only on %s", nodes, node.Name)
		}
	})

	// The examples' namespaces and networks; no serviceaccount controller runs to give the
	// namespaces their default ServiceAccount.
	c.kubectl(t, "apply", "-f", d.example("namespaces.yaml"))
	for _, ns := range []string{"demo", "networks"} {
		c.ensureDefaultServiceAccount(t, ns)
	}
	c.kubectl(t, "apply", "-f", d.example("networks.yaml"))

	t.Run("gates off: no bridge, and an annotated Pod starts without secondary interfaces (antrea is not chained)", func(t *testing.T) {
		c.kubectl(t, "apply", "-f", d.example("pod-without-ipam.yaml"))
		c.waitRunning(t, "demo", "l2-only")
		if _, err := c.ipv4Addrs("demo", "l2-only", "eth1"); err == nil {
			t.Error("demo/l2-only has an eth1 with SecondaryNetwork off")
		}
		if bridgeExists(t, node, teststack.SecondaryBridge) {
			t.Errorf("bridge %s exists on %s with SecondaryNetwork off", teststack.SecondaryBridge, node.Name)
		}
		c.deleteAndWait(t, "demo", "l2-only")
	})
	if t.Failed() {
		return
	}

	// Gates on, as a user does it: edit the ConfigMap, restart the Pods.
	d.editConfig(t, "antrea-agent.conf", []lineEdit{
		{"SecondaryNetwork: false", "SecondaryNetwork: true"},
		{"AntreaIPAM: false", "AntreaIPAM: true"},
		// No openvswitch kernel module on this machine.
		{"ovsDatapathType: system", "ovsDatapathType: netdev"},
		{"ovsBridges: []", "ovsBridges:\n- bridgeName: " + teststack.SecondaryBridge + "\n  physicalInterfaces: [" + uplink + "]"},
	})
	d.editConfig(t, "antrea-controller.conf", []lineEdit{{"AntreaIPAM: false", "AntreaIPAM: true"}})
	d.restart(t, "daemonset/"+agentDaemonSet, "deployment/"+controllerName)

	t.Run("gates on: the agent chains antrea last into node-1's primary CNI configuration", func(t *testing.T) {
		want, _, err := cniinstall.Chain(d.conflistBytes, cniinstall.Entry(""))
		if err != nil {
			t.Fatal(err)
		}
		var data []byte
		if err := eventually(agentStartup, func() error {
			if data, err = os.ReadFile(d.conflistPath); err != nil || string(data) != string(want) {
				return fmt.Errorf("not chained (%v)", err)
			}
			return nil
		}); err != nil {
			t.Errorf("%s is\n%s\nwant the original with {\"type\":\"antrea\"} appended:\n%s", d.conflistPath, data, want)
		}
	})

	t.Run("gates on: the agent creates the bridge with its uplink", func(t *testing.T) {
		err := eventually(agentStartup, func() error {
			out, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "list-ports", teststack.SecondaryBridge)
			if err != nil {
				return err
			}
			if !slices.Contains(strings.Fields(out), uplink) {
				return fmt.Errorf("ports of %s: %q, want %s", teststack.SecondaryBridge, out, uplink)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	if t.Failed() {
		return
	}

	// The webhook may take a moment to be reachable behind its Service after the restart.
	if err := eventually(time.Minute, func() error {
		_, err := c.tryKubectl("apply", "-f", d.example("ippools.yaml"))
		return err
	}); err != nil {
		t.Fatalf("apply the IPPools: %v", err)
	}
	t.Run("the controller's webhook, reached through its Service, rejects an overlapping IPPool", func(t *testing.T) {
		name := uniqueName("e2e-overlap-")
		_, err := c.crdClient(t).CrdV1beta1().IPPools().Create(context.Background(), &v1beta1.IPPool{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1beta1.IPPoolSpec{
				IPRanges:   []v1beta1.IPRange{{Start: "198.18.100.120", End: "198.18.100.121"}},
				SubnetInfo: v1beta1.SubnetInfo{Gateway: "198.18.100.1", PrefixLength: 24},
			},
		}, metav1.CreateOptions{})
		if err == nil {
			_ = c.crdClient(t).CrdV1beta1().IPPools().Delete(context.Background(), name, metav1.DeleteOptions{})
			t.Fatal("an IPPool overlapping vlan100-ipv4 was accepted")
		}
		if !strings.Contains(err.Error(), "vlan100-ipv4") {
			t.Errorf("the rejection does not name the pool it overlaps: %v", err)
		}
	})

	for _, f := range []string{"pod-networks-json.yaml", "pod-networks-shorthand.yaml", "pod-without-ipam.yaml"} {
		c.kubectl(t, "apply", "-f", d.example(f))
	}
	for _, name := range []string{"multi-vlan", "shorthand", "l2-only"} {
		c.waitRunning(t, "demo", name)
	}

	t.Run("JSON annotation: eth1 on demo/vlan100 and eth200 on networks/vlan200 of another namespace", func(t *testing.T) {
		cases := []struct {
			ifName, wantPrefix, ext string
		}{
			{"eth1", "198.18.100.", ext100},
			{"eth200", "198.18.200.", ext200},
		}
		for _, tc := range cases {
			addrs, err := c.ipv4Addrs("demo", "multi-vlan", tc.ifName)
			if err != nil || !strings.HasPrefix(addrs, tc.wantPrefix) || !strings.HasSuffix(addrs, "/24") {
				t.Errorf("%s of demo/multi-vlan has %q (%v), want one address of %s0/24", tc.ifName, addrs, err, tc.wantPrefix)
			}
			if err := c.pingFrom("demo", "multi-vlan", tc.ifName, tc.ext); err != nil {
				t.Errorf("no reply from %s through %s: %v", tc.ext, tc.ifName, err)
			}
		}
		d.checkNetworkStatus(t, "demo", "multi-vlan", map[string]string{"eth1": "demo/vlan100", "eth200": "networks/vlan200"})
	})

	t.Run("the VLAN comes from the IPPool when the NAD names none, else from the NAD", func(t *testing.T) {
		cases := []struct {
			ifName, wantTag, why string
		}{
			{"eth1", "100", "demo/vlan100 names no VLAN; IPPool vlan100-ipv4 says 100"},
			{"eth200", "200", "networks/vlan200 says 200; IPPool vlan200-ipv4 names none"},
		}
		for _, tc := range cases {
			port, ok := findPodPort(t, node, "demo", "multi-vlan", tc.ifName)
			if !ok || port.Tag != tc.wantTag {
				t.Errorf("port of %s: %+v (found %v), want tag %s (%s)", tc.ifName, port, ok, tc.wantTag, tc.why)
			}
		}
	})

	t.Run("shorthand annotation networks/vlan200@eth200", func(t *testing.T) {
		addrs, err := c.ipv4Addrs("demo", "shorthand", "eth200")
		if err != nil || !strings.HasPrefix(addrs, "198.18.200.") {
			t.Errorf("eth200 of demo/shorthand has %q (%v), want an address of 198.18.200.0/24", addrs, err)
		}
		if _, err := c.ipv4Addrs("demo", "shorthand", "eth1"); err == nil {
			t.Error("demo/shorthand has an eth1, but asked for one network only")
		}
		if port, ok := findPodPort(t, node, "demo", "shorthand", "eth200"); !ok || port.Tag != "200" {
			t.Errorf("port of eth200: %+v (found %v), want tag 200", port, ok)
		}
		if err := c.pingFrom("demo", "shorthand", "eth200", ext200); err != nil {
			t.Errorf("no reply from %s: %v", ext200, err)
		}
	})

	t.Run("a NAD without ipam: an interface on its VLAN without an address", func(t *testing.T) {
		addrs, err := c.ipv4Addrs("demo", "l2-only", "eth1")
		if err != nil || addrs != "" {
			t.Errorf("eth1 of demo/l2-only: addresses %q (%v), want an interface without one", addrs, err)
		}
		if port, ok := findPodPort(t, node, "demo", "l2-only", "eth1"); !ok || port.Tag != "100" {
			t.Errorf("port of eth1: %+v (found %v), want tag 100", port, ok)
		}
	})

	t.Run("restarting the agent leaves running Pods' interfaces untouched", func(t *testing.T) {
		type iface struct{ pod, ifName string }
		watched := []iface{{"multi-vlan", "eth1"}, {"multi-vlan", "eth200"}, {"shorthand", "eth200"}}
		before := map[iface]string{}
		for _, w := range watched {
			port, ok := findPodPort(t, node, "demo", w.pod, w.ifName)
			if !ok {
				t.Fatalf("no port for %s %s", w.pod, w.ifName)
			}
			before[w] = fmt.Sprintf("port %+v link %s", port, c.linkState(t, "demo", w.pod, w.ifName))
		}
		oldAgents := d.agentPods(t)
		// l2-only is started again once the new agent runs: its ADD is served only after the
		// agent's start-up reconciliation, the moment a wrong sweep would have struck.
		c.deleteAndWait(t, "demo", "l2-only")
		// The old agent must see its DaemonSet as it stops and keep antrea chained: Pods created
		// while the agent restarts would otherwise start without their secondary networks.
		stopWatch := d.watchChain(t)
		d.restart(t, "daemonset/"+agentDaemonSet)
		if gaps := stopWatch(); gaps > 0 {
			t.Errorf("antrea was unchained from %s %d time(s) during the restart", d.conflistPath, gaps)
		}
		if now := d.agentPods(t); len(now) != 1 || len(oldAgents) != 1 || now[0].UID == oldAgents[0].UID {
			t.Fatalf("agent Pods before %d, after %d: not replaced", len(oldAgents), len(now))
		}
		c.kubectl(t, "apply", "-f", d.example("pod-without-ipam.yaml"))
		c.waitRunning(t, "demo", "l2-only")
		if _, ok := findPodPort(t, node, "demo", "l2-only", "eth1"); !ok {
			t.Error("demo/l2-only, started after the restart, has no secondary interface: is antrea still chained?")
		}
		for _, w := range watched {
			port, _ := findPodPort(t, node, "demo", w.pod, w.ifName)
			after := fmt.Sprintf("port %+v link %s", port, c.linkState(t, "demo", w.pod, w.ifName))
			if after != before[w] {
				t.Errorf("%s %s changed across the restart:\nbefore %s\nafter  %s", w.pod, w.ifName, before[w], after)
			}
		}
		if err := c.pingFrom("demo", "multi-vlan", "eth1", ext100); err != nil {
			t.Errorf("no reply from %s after the restart: %v", ext100, err)
		}
	})

	t.Run("deleting a Pod releases its addresses and its ports", func(t *testing.T) {
		if owned := d.poolOwners(t, "vlan200-ipv4", "shorthand"); owned == 0 {
			t.Fatal("IPPool vlan200-ipv4 has no address of demo/shorthand before the delete")
		}
		c.deleteAndWait(t, "demo", "shorthand")
		err := eventually(30*time.Second, func() error {
			if _, ok := findPodPort(t, node, "demo", "shorthand", "eth200"); ok {
				return fmt.Errorf("the port of demo/shorthand eth200 is still there")
			}
			if owned := d.poolOwners(t, "vlan200-ipv4", "shorthand"); owned > 0 {
				return fmt.Errorf("IPPool vlan200-ipv4 still has %d address(es) of demo/shorthand", owned)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
		if _, ok := findPodPort(t, node, "demo", "multi-vlan", "eth200"); !ok {
			t.Error("the port of demo/multi-vlan eth200 went away too")
		}
	})

	t.Run("uninstalling restores node-1's CNI configuration", func(t *testing.T) {
		d.uninstall(t)
	})
}

// checkNetworkStatus checks the Pod's k8s.v1.cni.cncf.io/network-status against its interfaces.
func (d *deployment) checkNetworkStatus(t *testing.T, namespace, name string, want map[string]string) {
	t.Helper()
	var statuses []nadv1.NetworkStatus
	// The agent writes network-status after answering ADD.
	err := eventually(10*time.Second, func() error {
		pod, err := d.c.client.CoreV1().Pods(namespace).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		statuses = nil
		if err := json.Unmarshal([]byte(pod.Annotations[nadv1.NetworkStatusAnnot]), &statuses); err != nil {
			return fmt.Errorf("network-status of %s/%s: %w", namespace, name, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, s := range statuses {
		got[s.Interface] = s.Name
		addrs, err := d.c.ipv4Addrs(namespace, name, s.Interface)
		if err != nil {
			t.Errorf("network-status names %s, which the Pod does not have: %v", s.Interface, err)
			continue
		}
		for _, ip := range s.IPs {
			if !strings.Contains(" "+addrs, " "+ip+"/") {
				t.Errorf("network-status gives %s %s, the interface has %q", s.Interface, ip, addrs)
			}
		}
	}
	for ifName, network := range want {
		if got[ifName] != network {
			t.Errorf("network-status of %s = %q, want %q (all: %v)", ifName, got[ifName], network, got)
		}
	}
}

// poolOwners counts the addresses of a pool allocated to a Pod of the demo namespace.
func (d *deployment) poolOwners(t *testing.T, pool, pod string) int {
	t.Helper()
	n := 0
	for _, a := range d.c.poolAllocations(t, pool) {
		if o := a.Owner.Pod; o != nil && o.Namespace == "demo" && o.Name == pod {
			n++
		}
	}
	return n
}

// uninstall removes what the test made, the manifests last, and checks that node-1's CNI
// configuration is back as it was. It runs at most once: explicitly at the end of the test, and
// from Cleanup when the test stopped early.
func (d *deployment) uninstall(t *testing.T) {
	t.Helper()
	if d.manifest == "" {
		return
	}
	manifest := d.manifest
	d.manifest = ""
	c := d.c
	// Pods first, while the agent still runs to detach them.
	for _, name := range []string{"multi-vlan", "shorthand", "l2-only"} {
		c.deleteAndWait(t, "demo", name)
	}
	if _, err := c.tryKubectl("delete", "--ignore-not-found", "-f", d.example("networks.yaml")); err != nil {
		t.Errorf("delete the networks: %v", err)
	}
	// The documented uninstall: antrea.yml, which holds everything but the CRDs.
	c.kubectlLong(t, rolloutTimeout, "delete", "--ignore-not-found", "--wait=true", "--timeout="+rolloutTimeout.String(),
		"-f", manifest)
	// The pools after the webhook: a pool that still had an allocation would be kept by it, and
	// stay to overlap the pools of later tests.
	for _, f := range []string{"ippools.yaml", "namespaces.yaml"} {
		if _, err := c.tryKubectl("delete", "--ignore-not-found", "-f", d.example(f)); err != nil {
			t.Errorf("delete %s: %v", f, err)
		}
	}
	err := eventually(podDeleteTimeout, func() error {
		if pods := d.agentPods(t); len(pods) > 0 {
			return fmt.Errorf("%d agent Pod(s) still there", len(pods))
		}
		pods, err := c.client.CoreV1().Pods(systemNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "app=antrea"})
		if err != nil || len(pods.Items) > 0 {
			return fmt.Errorf("antrea Pods still there (%v)", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("after deleting the manifests: %v", err)
	}
	data, err := os.ReadFile(d.conflistPath)
	if err != nil || string(data) != string(d.conflistBytes) {
		t.Errorf("%s after the uninstall:\n%s\nwant it as before the install:\n%s", d.conflistPath, data, d.conflistBytes)
		// Leave the node usable for the tests that follow.
		if werr := os.WriteFile(d.conflistPath, d.conflistBytes, 0o644); werr != nil {
			t.Errorf("restore %s: %v", d.conflistPath, werr)
		}
	}
	if _, err := os.Stat(cniPluginBinary); !d.binaryBefore && err == nil {
		t.Errorf("%s is still there after the uninstall", cniPluginBinary)
		_ = os.Remove(cniPluginBinary)
	}
	// The agent leaves its bridge (as Antrea's does); the test removes it.
	if _, err := tryRun("ovs-vsctl", "--db="+d.node.OVSDB, "--timeout=30", "--if-exists", "del-br", teststack.SecondaryBridge); err != nil {
		t.Errorf("delete %s: %v", teststack.SecondaryBridge, err)
	}
}
