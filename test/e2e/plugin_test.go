package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/podvlanctl"
)

// TestKubectlPodvlan installs the manifests, runs docs/examples' multi-vlan Pod on node-1 and
// checks what the kubectl-podvlan plugin reports against the cluster's real state: the OVS port
// it names is the port the agent made, the pool's holder and Node are the Pod's, a holder whose
// Pod is gone is a leak, and doctor finds the gates off before they are turned on and nothing
// wrong after. The plugin runs as a user of group podvlan-viewers bound by
// docs/examples/kubectl-podvlan-rbac.yaml, impersonated, so that the documented RBAC is enough.
func TestKubectlPodvlan(t *testing.T) {
	c := newTestCluster(t)
	d := newDeployment(t, c)
	node := d.node
	plugin := buildPlugin(t)
	t.Cleanup(func() { d.uninstall(t) })
	d.install(t)
	rbac := filepath.Join(teststack.RepoRoot(t), "docs", "examples", "kubectl-podvlan-rbac.yaml")
	c.kubectl(t, "apply", "-f", rbac)
	t.Cleanup(func() { _, _ = c.tryKubectl("delete", "--ignore-not-found", "-f", rbac) })
	run := func(t *testing.T, exit pluginExit, args ...string) []byte {
		t.Helper()
		return runPlugin(t, plugin, c.kubeconfig, exit, args...)
	}

	t.Run("doctor with the gates off: the gates and the webhook without its controller", func(t *testing.T) {
		var checks []podvlanctl.Check
		decode(t, run(t, exitFailure, "doctor", "-o", "json"), &checks)
		want := map[string]string{"feature gates": podvlanctl.CheckWarn, "IPPool webhook": podvlanctl.CheckFail,
			"CRD ippools.crd.antrea.io": podvlanctl.CheckOK}
		for _, ch := range checks {
			if w, ok := want[ch.Name]; ok && ch.Status != w {
				t.Errorf("check %q: %s %q, want %s", ch.Name, ch.Status, ch.Detail, w)
			}
		}
	})

	d.editConfig(t, "antrea-agent.conf", []lineEdit{
		{"SecondaryNetwork: false", "SecondaryNetwork: true"},
		{"AntreaIPAM: false", "AntreaIPAM: true"},
		{"ovsDatapathType: system", "ovsDatapathType: netdev"},
		{"ovsBridges: []", "ovsBridges:\n- bridgeName: " + teststack.SecondaryBridge + "\n  physicalInterfaces: [" + node.Uplink + "]"},
	})
	d.editConfig(t, "antrea-controller.conf", []lineEdit{{"AntreaIPAM: false", "AntreaIPAM: true"}})
	d.restart(t, "daemonset/"+agentDaemonSet, "deployment/"+controllerName)
	c.kubectl(t, "apply", "-f", d.example("namespaces.yaml"))
	for _, ns := range []string{"demo", "networks"} {
		c.ensureDefaultServiceAccount(t, ns)
	}
	c.kubectl(t, "apply", "-f", d.example("networks.yaml"))
	if err := eventually(time.Minute, func() error {
		_, err := c.tryKubectl("apply", "-f", d.example("ippools.yaml"))
		return err
	}); err != nil {
		t.Fatalf("apply the IPPools: %v", err)
	}
	c.kubectl(t, "apply", "-f", d.example("pod-networks-json.yaml"))
	c.waitRunning(t, "demo", "multi-vlan")
	// With address blocks the Node reports its holders about a second after the ADD: the plugin
	// reads them from the API server, as a user would a moment later.
	for _, pool := range []string{"vlan100-ipv4", "vlan200-ipv4"} {
		c.waitPoolHolders(t, pool, holdCountOf(1, "Pod demo/multi-vlan", ofPod("demo", "multi-vlan")))
	}

	t.Run("pod: network, VLAN, address and the OVS port the agent made, per interface", func(t *testing.T) {
		var r podvlanctl.PodReport
		decode(t, run(t, exitSuccess, "-n", "demo", "pod", "multi-vlan", "-o", "json"), &r)
		cases := []struct {
			ifName, network, prefix string
			vlan                    int
		}{
			{"eth1", "demo/vlan100", "198.18.100.", 100},
			{"eth200", "networks/vlan200", "198.18.200.", 200},
		}
		if len(r.Interfaces) != len(cases) || r.Node != node.Name {
			t.Fatalf("report %+v, want %d interfaces on %s", r, len(cases), node.Name)
		}
		for i, tc := range cases {
			got := r.Interfaces[i]
			port, ok := findPodPort(t, node, "demo", "multi-vlan", tc.ifName)
			if !ok {
				t.Fatalf("no OVS port for %s", tc.ifName)
			}
			if got.Interface != tc.ifName || got.Network != tc.network || got.VLAN == nil || *got.VLAN != tc.vlan || !got.Attached ||
				len(got.Addresses) != 1 || !strings.HasPrefix(got.Addresses[0], tc.prefix) || got.OVSPort != port.Name || len(got.Problems) > 0 {
				t.Errorf("%s: %+v, want %s VLAN %d, one address in %s0/24, OVS port %s", tc.ifName, got, tc.network, tc.vlan, tc.prefix, port.Name)
			}
			if got.LastEvent == nil || got.LastEvent.Reason != "NetworkAttached" {
				t.Errorf("%s: last event %+v, want the agent's NetworkAttached", tc.ifName, got.LastEvent)
			}
		}
		table := string(run(t, exitSuccess, "-n", "demo", "pod", "multi-vlan"))
		for _, want := range []string{"INTERFACE", "eth200", "networks/vlan200", r.Interfaces[0].OVSPort} {
			if !strings.Contains(table, want) {
				t.Errorf("table output lacks %q:\n%s", want, table)
			}
		}
	})

	t.Run("pool: holders with their Node, and a holder whose Pod is gone is a leak", func(t *testing.T) {
		pools := c.crdClient(t).CrdV1beta1().IPPools()
		const ghost = "198.18.100.99"
		editStatus := func(edit func(*v1beta1.IPPool)) {
			err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
				p, err := pools.Get(context.Background(), "vlan100-ipv4", metav1.GetOptions{})
				if err != nil {
					return err
				}
				edit(p)
				_, err = pools.UpdateStatus(context.Background(), p, metav1.UpdateOptions{})
				return err
			})
			if err != nil {
				t.Fatalf("update the status of vlan100-ipv4: %v", err)
			}
		}
		// An allocation of a Pod that does not exist, as a crash between allocation and record
		// would leave; the controller would release it after its grace period.
		editStatus(func(p *v1beta1.IPPool) {
			p.Status.IPAddresses = append(p.Status.IPAddresses, v1beta1.IPAddressState{IPAddress: ghost, Phase: v1beta1.IPAddressPhaseAllocated,
				Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: "ghost", Namespace: "demo", ContainerID: "0123456789ab", IFName: "eth1"}}})
		})
		t.Cleanup(func() {
			editStatus(func(p *v1beta1.IPPool) {
				p.Status.IPAddresses = slices.DeleteFunc(p.Status.IPAddresses, func(a v1beta1.IPAddressState) bool { return a.IPAddress == ghost })
			})
		})
		var r podvlanctl.PoolReport
		decode(t, run(t, exitSuccess, "pool", "vlan100-ipv4", "-o", "json"), &r)
		var mine, leak *podvlanctl.HolderReport
		for i := range r.Holders {
			switch {
			case r.Holders[i].Pod == "multi-vlan":
				mine = &r.Holders[i]
			case r.Holders[i].IP == ghost:
				leak = &r.Holders[i]
			}
		}
		if mine == nil || mine.Node != node.Name || mine.Leak != "" || mine.IfName != "eth1" {
			t.Errorf("holder of demo/multi-vlan: %+v, want eth1 on %s, no leak", mine, node.Name)
		}
		if leak == nil || !strings.Contains(leak.Leak, "demo/ghost no longer exists") || r.Leaks != 1 {
			t.Errorf("ghost holder %+v, leaks %d: want one leak naming demo/ghost", leak, r.Leaks)
		}
		if r.VLAN != 100 || r.Total == 0 || r.Used != len(r.Holders) || !slices.Contains(r.PerNode, podvlanctl.NodeShare{Node: node.Name, Count: 1}) {
			t.Errorf("report %+v", r)
		}
		var all []podvlanctl.PoolReport
		decode(t, run(t, exitSuccess, "pool", "-o", "json"), &all)
		if len(all) < 2 {
			t.Errorf("pool without a name lists %d pools, want the examples' two at least", len(all))
		}
	})

	t.Run("node: bridge and uplink from the configuration and the agent's Events, the Pod's ports, the agent", func(t *testing.T) {
		var r podvlanctl.NodeReport
		decode(t, run(t, exitSuccess, "node", node.Name, "-o", "json"), &r)
		if r.Bridge != teststack.SecondaryBridge || r.Datapath != "netdev" || r.BridgeState != podvlanctl.StateReady || !r.Agent.Ready {
			t.Errorf("report %+v", r)
		}
		if len(r.Uplinks) != 1 || r.Uplinks[0].Name != node.Uplink || r.Uplinks[0].State != podvlanctl.StateAttached {
			t.Errorf("uplinks %+v, want %s attached", r.Uplinks, node.Uplink)
		}
		port, _ := findPodPort(t, node, "demo", "multi-vlan", "eth1")
		if !slices.ContainsFunc(r.Ports, func(p podvlanctl.PortReport) bool {
			return p.Pod == "demo/multi-vlan" && p.Interface == "eth1" && p.OVSPort == port.Name
		}) {
			t.Errorf("ports %+v lack demo/multi-vlan eth1 on %s", r.Ports, port.Name)
		}
	})

	t.Run("doctor with the gates on: nothing fails, the serving certificate is verified", func(t *testing.T) {
		var checks []podvlanctl.Check
		decode(t, run(t, exitAny, "doctor", "-o", "json"), &checks)
		for _, ch := range checks {
			// The simulated Nodes run no agent Pod (no kubelet): only node-1's matters here.
			agents := ch.Name == "antrea-agent DaemonSet" && ch.Status != podvlanctl.CheckOK
			if ch.Status == podvlanctl.CheckFail || agents && strings.Contains(ch.Detail, node.Name+":") ||
				ch.Name == "webhook serving certificate" && ch.Status != podvlanctl.CheckOK {
				t.Errorf("check %q: %s %q (%s)", ch.Name, ch.Status, ch.Detail, ch.Fix)
			}
		}
	})
}

// buildPlugin builds cmd/kubectl-podvlan into a temporary directory.
func buildPlugin(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "kubectl-podvlan")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/kubectl-podvlan")
	cmd.Dir = teststack.RepoRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build kubectl-podvlan: %v\n%s", err, out)
	}
	return bin
}

// pluginExit is how a run of the plugin must end.
type pluginExit int

const (
	exitSuccess pluginExit = iota
	// exitFailure: doctor exits 1 when a check fails.
	exitFailure
	exitAny
)

// runPlugin runs the plugin as a member of group podvlan-viewers and returns its standard output.
func runPlugin(t *testing.T, plugin, kubeconfig string, exit pluginExit, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	args = append([]string{"--kubeconfig", kubeconfig, "--as", "podvlan-e2e-viewer", "--as-group", "podvlan-viewers"}, args...)
	cmd := exec.CommandContext(ctx, plugin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if exit == exitSuccess && err != nil || exit == exitFailure && err == nil {
		t.Fatalf("kubectl-podvlan %s: exit %v (want %v)\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, exit, stdout.String(), stderr.String())
	}
	return stdout.Bytes()
}

func decode(t *testing.T, data []byte, out any) {
	t.Helper()
	if err := json.Unmarshal(data, out); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}
