package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/cniinstall"
)

// rechainDeadline is the promise of the chain keeper: antrea is back in the primary configuration
// within this long after the primary plugin rewrote it.
const rechainDeadline = 2 * time.Second

// seedAgentConf is the seed's antrea-agent.conf mistake: ovsBridges at the top level instead of
// under secondaryNetwork.
const seedAgentConf = `featureGates:
  SecondaryNetwork: true
ovsDatapathType: netdev
secondaryNetwork:
ovsBridges:
- bridgeName: %s
  physicalInterfaces: [%s]
`

// TestDeployChainKeeper installs the manifests as a user does, with SecondaryNetwork on, and
// checks what the agent promises about node-1's CNI configuration and its own configuration: the
// chain survives the primary plugin rewriting its file, a mis-indented configuration degrades
// instead of blocking the Node, and the documented uninstall leaves other plugins' networks alone.
func TestDeployChainKeeper(t *testing.T) {
	c := newTestCluster(t)
	d := newDeployment(t, c)
	node := d.node
	t.Cleanup(func() { d.uninstall(t) })
	d.install(t)
	goodConf := d.agentConf(t)
	d.editConfig(t, "antrea-agent.conf", []lineEdit{
		{"SecondaryNetwork: false", "SecondaryNetwork: true"},
		{"ovsDatapathType: system", "ovsDatapathType: netdev"},
		{"ovsBridges: []", "ovsBridges:\n- bridgeName: " + teststack.SecondaryBridge + "\n  physicalInterfaces: [" + node.Uplink + "]"},
	})
	d.restart(t, "daemonset/"+agentDaemonSet)
	d.waitChained(t, agentStartup)

	ns := c.createNamespace(t, "e2e-chain-")
	c.createNAD(t, ns, "vlan100", `{"cniVersion": "0.3.0", "type": "antrea", "networkType": "vlan", "vlan": 100}`)
	annotated := func(name string) *corev1.Pod {
		p := c.testPod(t, ns, name, node.Name, name)
		p.Annotations = map[string]string{"k8s.v1.cni.cncf.io/networks": "vlan100"}
		return p
	}

	t.Run("the primary plugin rewrites its file as Calico does: re-chained within 2s, with a Node Event and a metric", func(t *testing.T) {
		since := time.Now()
		rewriteAsCalico(t, d.conflistPath, d.conflistBytes)
		took, err := waitFor(rechainDeadline+time.Second, 10*time.Millisecond, func() error {
			data, err := os.ReadFile(d.conflistPath)
			if err != nil {
				return err
			}
			if has, err := cniinstall.HasEntry(data); err != nil || !has {
				return fmt.Errorf("antrea is not chained in %s (%v)", d.conflistPath, err)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("re-chained %v after the rewrite", took)
		if took > rechainDeadline {
			t.Errorf("re-chained after %v, want within %v", took, rechainDeadline)
		}
		want, _, err := cniinstall.Chain(d.conflistBytes, cniinstall.Entry(""))
		if err != nil {
			t.Fatal(err)
		}
		if data, _ := os.ReadFile(d.conflistPath); string(data) != string(want) {
			t.Errorf("%s after the re-chain:\n%s\nwant\n%s", d.conflistPath, data, want)
		}
		if err := eventually(10*time.Second, func() error {
			return d.nodeEvent(t, "CNIChainRestored", "rewritten without antrea", since)
		}); err != nil {
			t.Error(err)
		}
		if err := eventually(10*time.Second, func() error { return d.agentMetric(t, "podvlan_agent_cni_chain_restored_total 1") }); err != nil {
			t.Error(err)
		}
	})

	t.Run("a new annotated Pod gets eth1 after the re-chain", func(t *testing.T) {
		c.createPod(t, annotated("after-rewrite"))
		if _, err := c.ipv4Addrs(ns, "after-rewrite", "eth1"); err != nil {
			t.Errorf("%s/after-rewrite has no eth1: %v", ns, err)
		}
		if _, ok := findPodPort(t, node, ns, "after-rewrite", "eth1"); !ok {
			t.Error("no OVS port for eth1")
		}
		c.deleteAndWait(t, ns, "after-rewrite")
	})

	t.Run("the seed's mis-indented ovsBridges: the agent degrades, plain Pods start, annotated Pods get the error", func(t *testing.T) {
		since := time.Now()
		d.setAgentConf(t, fmt.Sprintf(seedAgentConf, teststack.SecondaryBridge, node.Uplink))
		old := d.agentPods(t)
		d.c.kubectl(t, "-n", systemNamespace, "rollout", "restart", "daemonset/"+agentDaemonSet)
		// The rollout never completes: the degraded agent is not ready, on purpose.
		agent := d.waitNewAgentRunning(t, old)
		if err := eventually(30*time.Second, func() error {
			return d.nodeEvent(t, "InvalidConfiguration", "ovsBridges", since)
		}); err != nil {
			t.Error(err)
		}
		c.createPod(t, c.testPod(t, ns, "plain", node.Name, "plain"))

		if _, err := c.client.CoreV1().Pods(ns).Create(context.Background(), annotated("asks"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var events []string
		if err := eventually(podStartTimeout, func() error {
			events = c.podEvents(t, ns, "asks")
			for _, e := range events {
				if strings.Contains(e, "ovsBridges") && strings.Contains(e, "secondaryNetwork.ovsBridges") {
					return nil
				}
			}
			return fmt.Errorf("no Event of %s/asks names ovsBridges and where it belongs", ns)
		}); err != nil {
			t.Errorf("%v; events: %v", err, events)
		}
		if err := d.agentMetric(t, "podvlan_agent_config_invalid 1"); err != nil {
			t.Error(err)
		}
		p, err := c.client.CoreV1().Pods(systemNamespace).Get(context.Background(), agent.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].RestartCount != 0 || podReady(p) {
			t.Errorf("degraded agent %s: %s; want running, never restarted, not ready", p.Name, describePodStatus(p))
		}
		if data, _ := os.ReadFile(d.conflistPath); !strings.Contains(string(data), `"antrea"`) {
			t.Errorf("antrea is not chained while the configuration is invalid: annotated Pods would start without their networks")
		}
		c.deleteAndWait(t, ns, "asks")
		c.deleteAndWait(t, ns, "plain")

		d.setAgentConf(t, goodConf)
		d.editConfig(t, "antrea-agent.conf", []lineEdit{
			{"SecondaryNetwork: false", "SecondaryNetwork: true"},
			{"ovsDatapathType: system", "ovsDatapathType: netdev"},
			{"ovsBridges: []", "ovsBridges:\n- bridgeName: " + teststack.SecondaryBridge + "\n  physicalInterfaces: [" + node.Uplink + "]"},
		})
		d.restart(t, "daemonset/"+agentDaemonSet)
	})

	t.Run("kubectl delete -f antrea.yml leaves the CRDs and other plugins' NetworkAttachmentDefinitions", func(t *testing.T) {
		c.createNAD(t, ns, "other-plugin", `{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth0", "mode": "bridge"}`)
		d.uninstall(t)
		nad, err := c.nadClient(t).K8sCniCncfIoV1().NetworkAttachmentDefinitions(ns).Get(context.Background(), "other-plugin", metav1.GetOptions{})
		if err != nil {
			t.Fatalf("the NetworkAttachmentDefinition of another plugin is gone after the uninstall: %v", err)
		}
		if !strings.Contains(nad.Spec.Config, "macvlan") {
			t.Errorf("its config changed: %s", nad.Spec.Config)
		}
		for _, crd := range []string{"network-attachment-definitions.k8s.cni.cncf.io", "ippools.crd.antrea.io"} {
			if _, err := c.tryKubectl("get", "crd", crd); err != nil {
				t.Errorf("CRD %s is gone after the uninstall: %v", crd, err)
			}
		}
	})
}

// rewriteAsCalico replaces the primary configuration the way Calico's install-cni does when it
// restarts: its own content (without antrea), written to a temporary file renamed over the file.
func rewriteAsCalico(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".calico-tmp")
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls check every step until it succeeds, and returns how long that took.
func waitFor(timeout, step time.Duration, check func() error) (time.Duration, error) {
	start := time.Now()
	for {
		err := check()
		if err == nil {
			return time.Since(start), nil
		}
		if time.Since(start) > timeout {
			return time.Since(start), fmt.Errorf("after %v: %w", timeout, err)
		}
		time.Sleep(step)
	}
}

// waitChained waits until antrea is chained in node-1's primary configuration.
func (d *deployment) waitChained(t *testing.T, timeout time.Duration) {
	t.Helper()
	if err := eventually(timeout, func() error {
		data, err := os.ReadFile(d.conflistPath)
		if err != nil {
			return err
		}
		if has, err := cniinstall.HasEntry(data); err != nil || !has {
			return fmt.Errorf("antrea is not chained in %s (%v)", d.conflistPath, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// nodeEvent returns nil when node-1 has an Event of this reason saying want, recorded after since.
func (d *deployment) nodeEvent(t *testing.T, reason, want string, since time.Time) error {
	t.Helper()
	list, err := d.c.client.CoreV1().Events(metav1.NamespaceDefault).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Node,involvedObject.name=" + d.node.Name + ",reason=" + reason})
	if err != nil {
		return err
	}
	var seen []string
	for _, e := range list.Items {
		last := e.LastTimestamp.Time
		if last.IsZero() {
			last = e.EventTime.Time
		}
		if strings.Contains(e.Message, want) && !last.Before(since.Truncate(time.Second)) {
			return nil
		}
		seen = append(seen, e.Message)
	}
	return fmt.Errorf("no %s Event on Node %s saying %q since %s; seen %q", reason, d.node.Name, want, since.Format(time.RFC3339), seen)
}

// agentMetricsURL is where the DaemonSet's agent serves /metrics on node-1 (host network).
const agentMetricsURL = "http://127.0.0.1:10351/metrics"

// agentMetric returns nil when the agent's /metrics on node-1 has the line want.
func (d *deployment) agentMetric(t *testing.T, want string) error {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(agentMetricsURL)
	if err != nil {
		return fmt.Errorf("agent metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agent metrics: %d %v", resp.StatusCode, err)
	}
	for _, l := range strings.Split(string(body), "\n") {
		if strings.TrimSpace(l) == want {
			return nil
		}
	}
	return fmt.Errorf("the agent's /metrics has no line %q", want)
}

// agentConf returns antrea-agent.conf of the ConfigMap.
func (d *deployment) agentConf(t *testing.T) string {
	t.Helper()
	cm, err := d.c.client.CoreV1().ConfigMaps(systemNamespace).Get(context.Background(), configMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ConfigMap %s: %v", configMapName, err)
	}
	return cm.Data["antrea-agent.conf"]
}

// setAgentConf replaces antrea-agent.conf of the ConfigMap.
func (d *deployment) setAgentConf(t *testing.T, conf string) {
	t.Helper()
	cms := d.c.client.CoreV1().ConfigMaps(systemNamespace)
	cm, err := cms.Get(context.Background(), configMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ConfigMap %s: %v", configMapName, err)
	}
	cm.Data["antrea-agent.conf"] = conf
	if _, err := cms.Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update ConfigMap %s: %v", configMapName, err)
	}
}

// waitNewAgentRunning waits for an agent Pod other than the old ones to run (ready or not).
func (d *deployment) waitNewAgentRunning(t *testing.T, old []corev1.Pod) corev1.Pod {
	t.Helper()
	var found corev1.Pod
	if err := eventually(rolloutTimeout, func() error {
		for _, p := range d.agentPods(t) {
			isOld := false
			for _, o := range old {
				isOld = isOld || o.UID == p.UID
			}
			if !isOld && p.Status.Phase == corev1.PodRunning {
				found = p
				return nil
			}
		}
		return fmt.Errorf("no new agent Pod runs")
	}); err != nil {
		t.Fatal(err)
	}
	return found
}
