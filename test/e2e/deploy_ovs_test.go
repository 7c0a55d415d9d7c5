package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
)

// Where antrea-with-ovs.yml keeps Open vSwitch on the Node.
const (
	podOVSRunDir = "/var/run/podvlan/openvswitch"
	podOVSDBDir  = "/var/lib/podvlan/openvswitch"
)

// TestDeployWithOVS installs build/yamls/antrea-with-ovs.yml on node-1: the agent Pod runs its own
// ovsdb-server and ovs-vswitchd (the antrea-ovs image), the agent builds its bridge there, a Pod of
// docs/examples gets VLAN 100 through it to the external host, and after the agent Pod is
// restarted the bridge and the Pod's port are still in the database kept on the Node and traffic
// flows again.
//
// node-1 runs the local cluster's own Open vSwitch in the same network namespace. Two
// ovs-vswitchd cannot both run userspace-datapath bridges there, so the test runs only while the
// cluster's Open vSwitch on node-1 has no bridge, and skips otherwise.
func TestDeployWithOVS(t *testing.T) {
	c := newTestCluster(t)
	d := newDeployment(t, c)
	d.manifest = filepath.Join(filepath.Dir(d.manifest), "antrea-with-ovs.yml")
	if missing := d.missingImages(t); len(missing) > 0 {
		t.Skipf("images %v are not in the local cluster's containerd: run hack/images.sh and hack/ovs-image.sh", missing)
	}
	node := d.node
	privateOVSDB := node.OVSDB
	if out, err := tryRun("ovs-vsctl", "--db="+privateOVSDB, "--timeout=30", "list-br"); err != nil || strings.TrimSpace(out) != "" {
		t.Skipf("node-1's own Open vSwitch has bridges (%q, %v): a second ovs-vswitchd cannot run a userspace bridge beside them", out, err)
	}
	if _, err := os.Stat(podOVSDBDir); err == nil {
		t.Fatalf("%s exists: left by an earlier run; delete it", podOVSDBDir)
	}
	t.Cleanup(func() {
		d.node.OVSDB = privateOVSDB // the uninstall deletes a bridge left there, if any
		d.uninstall(t)
		cleanupPodOVS(t)
	})
	d.install(t)
	podOVS := node
	podOVS.OVSDB = "unix:" + podOVSRunDir + "/db.sock"
	d.node = podOVS

	t.Run("the agent Pod runs Open vSwitch: db.sock on the Node, the database in the hostPath", func(t *testing.T) {
		if _, err := tryRun("ovs-vsctl", "--db="+podOVS.OVSDB, "--timeout=30", "show"); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(podOVSDBDir, "conf.db")); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}

	d.editConfig(t, "antrea-agent.conf", []lineEdit{
		{"SecondaryNetwork: false", "SecondaryNetwork: true"},
		{"AntreaIPAM: false", "AntreaIPAM: true"},
		{"ovsDatapathType: system", "ovsDatapathType: netdev"},
		{"ovsBridges: []", "ovsBridges:\n- bridgeName: " + teststack.SecondaryBridge + "\n  physicalInterfaces: [" + node.Uplink + "]"},
	})
	d.editConfig(t, "antrea-controller.conf", []lineEdit{{"AntreaIPAM: false", "AntreaIPAM: true"}})
	d.restart(t, "daemonset/"+agentDaemonSet, "deployment/"+controllerName)
	waitUplink := func(t *testing.T) {
		t.Helper()
		err := eventually(agentStartup, func() error {
			out, err := tryRun("ovs-vsctl", "--db="+podOVS.OVSDB, "--timeout=30", "list-ports", teststack.SecondaryBridge)
			if err != nil {
				return err
			}
			if !slices.Contains(strings.Fields(out), node.Uplink) {
				return fmt.Errorf("ports of %s: %q, want %s", teststack.SecondaryBridge, out, node.Uplink)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	t.Run("the agent makes its bridge with the uplink in the Pod's Open vSwitch", waitUplink)
	if t.Failed() {
		return
	}

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
	ext100 := c.ext(t, 100).IP.String()
	port, ok := findPodPort(t, podOVS, "demo", "multi-vlan", "eth1")
	t.Run("a Pod reaches VLAN 100's external host through the Pod's Open vSwitch", func(t *testing.T) {
		if !ok || port.Tag != "100" {
			t.Fatalf("port of demo/multi-vlan eth1: %+v (found %v), want tag 100", port, ok)
		}
		if err := c.pingFrom("demo", "multi-vlan", "eth1", ext100); err != nil {
			t.Error(err)
		}
	})

	t.Run("after the agent Pod restarts, the kept database still has the bridge and the port, and traffic flows", func(t *testing.T) {
		before := d.agentPods(t)
		if len(before) != 1 {
			t.Fatalf("%d agent Pods", len(before))
		}
		ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
		defer cancel()
		if err := c.client.CoreV1().Pods(systemNamespace).Delete(ctx, before[0].Name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		d.waitRollouts(t)
		if err := eventually(podStartTimeout, func() error {
			pods := d.agentPods(t)
			if len(pods) != 1 || pods[0].UID == before[0].UID || !podReady(&pods[0]) {
				return fmt.Errorf("no new ready agent Pod yet")
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		waitUplink(t)
		after, ok := findPodPort(t, podOVS, "demo", "multi-vlan", "eth1")
		if !ok || after.Name != port.Name || after.Tag != "100" {
			t.Errorf("port after the restart: %+v (found %v), want %s with tag 100 as before", after, ok, port.Name)
		}
		if err := eventually(30*time.Second, func() error { return c.pingFrom("demo", "multi-vlan", "eth1", ext100) }); err != nil {
			t.Error(err)
		}
	})
}

// cleanupPodOVS removes what antrea-with-ovs.yml leaves on node-1: the database and run
// directories, and the userspace datapath's devices, so that node-1's own Open vSwitch can make
// them again.
func cleanupPodOVS(t *testing.T) {
	t.Helper()
	for _, dir := range []string{podOVSDBDir, podOVSRunDir} {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	}
	for _, link := range []string{"ovs-netdev", teststack.SecondaryBridge} {
		if _, err := tryRun("ip", "link", "show", link); err == nil {
			t.Logf("deleting %s left by the Pod's Open vSwitch", link)
			if _, err := tryRun("ip", "link", "del", link); err != nil {
				t.Errorf("delete %s: %v", link, err)
			}
		}
	}
}
