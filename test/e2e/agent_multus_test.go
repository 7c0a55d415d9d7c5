package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/internal/teststack"
)

// multusList is the Node's CNI configuration with the real Multus thin plugin as the runtime's
// only plugin: the primary network (bridge + host-local) is Multus's cluster network, and the
// Pod annotation's networks are Multus's delegates.
func multusList(t *testing.T, c *testCluster, a *agentProcess) *libcni.NetworkConfigList {
	t.Helper()
	conf := fmt.Sprintf(`{"cniVersion": "1.0.0", "name": "multus-cni-network", "plugins": [{
	  "type": "multus", "kubeconfig": %q, "cniDir": %q, "logFile": %q, "logLevel": "verbose", "logToStderr": false,
	  "delegates": [{"cniVersion": "1.0.0", "name": "e2e-primary", "plugins": [
	    {"type": "bridge", "bridge": "pvprim0", "isGateway": false, "ipMasq": false,
	     "ipam": {"type": "host-local", "subnet": "10.251.%d.0/24", "dataDir": %q}}]}]}]}`,
		c.kubeconfig, filepath.Join(a.dir, "multus"), filepath.Join(a.dir, "multus.log"), a.node.Index,
		filepath.Join(a.dir, "host-local"))
	list, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		t.Fatalf("conflist: %v", err)
	}
	return list
}

// TestAgentUnderMultus runs the real Multus thin plugin (built by hack/build-tools.sh) in front of
// the agent, as a cluster with Multus does: Multus reads the Pod annotation and the
// NetworkAttachmentDefinition itself, calls antrea as a delegate for net1 with the requested MAC,
// and writes network-status itself; the agent attaches the VLAN network and writes no entry of
// its own.
func TestAgentUnderMultus(t *testing.T) {
	c := newTestCluster(t)
	multus := filepath.Join(c.ToolsBin, "multus")
	if _, err := os.Stat(multus); err != nil {
		t.Skipf("the Multus thin plugin is not built (%v): run hack/build-tools.sh", err)
	}
	c.InstallCRDs(t)
	node := c.node(t, 1)
	ns := c.createNamespace(t, "e2e-multus-real-")
	p100, _ := vlanPools(t, c, 60, 69)
	c.createNAD(t, ns, "vlan100", teststack.VLANNetworkConfig(0, p100))
	a := c.startAgent(t, node, teststack.DefaultAgentConfig(node.Uplink))
	// Multus runs the shim with the NetworkAttachmentDefinition's configuration, which names no
	// socket: the environment (which plugins inherit) points it at this test's agent.
	t.Setenv("ANTREA_CNI_SOCKET", a.Socket)

	s := c.newSandbox(t, ns, "multus", node, `[{"name": "vlan100", "mac": "02:aa:bb:cc:dd:05"}]`)
	cni := libcni.NewCNIConfigWithCacheDir([]string{filepath.Dir(multus), projectBinaries(t), teststack.ReferencePlugins},
		filepath.Join(a.dir, "cni-cache"), nil)
	list := multusList(t, c, a)
	var res types.Result
	if err := teststack.InNetNS(node.NetNS, func() error {
		var err error
		res, err = cni.AddNetworkList(context.Background(), list, s.RuntimeConf("eth0"))
		return err
	}); err != nil {
		log, _ := os.ReadFile(filepath.Join(a.dir, "multus.log"))
		t.Fatalf("ADD through Multus: %v\nMultus log:\n%s", err, teststack.Tail(string(log), 30))
	}
	t.Logf("Multus result IPs %v", resultIPs(t, res))

	t.Run("net1 is attached with the requested MAC, on VLAN 100", func(t *testing.T) {
		link := mustRun(t, "ip", "-n", s.NetNS, "-o", "link", "show", "net1")
		if !strings.Contains(link, "02:aa:bb:cc:dd:05") {
			t.Errorf("net1 does not carry the requested MAC: %s", link)
		}
		if addr := podAddress(t, s, "net1"); !strings.HasPrefix(addr, "198.18.100.6") {
			t.Errorf("net1 has %s, want an address of %s", addr, p100)
		}
		ports := nodePodPorts(t, node)
		if len(ports) != 1 || !strings.HasSuffix(ports[0], " 100") {
			t.Errorf("ports %v, want one with tag 100", ports)
		}
		if err := ping(s.NetNS, c.ext(t, 100).IP.String()); err != nil {
			t.Errorf("net1 cannot reach the VLAN-100 host: %v", err)
		}
	})

	t.Run("Multus writes network-status: the primary and net1, once each", func(t *testing.T) {
		st := networkStatus(t, c, s)
		byIf := map[string]int{}
		for _, e := range st {
			byIf[e.Interface]++
			if e.Interface == "net1" && e.Name != ns+"/vlan100" {
				t.Errorf("net1's entry names %s, want %s/vlan100", e.Name, ns)
			}
		}
		if byIf["eth0"] != 1 || byIf["net1"] != 1 || len(st) != 2 {
			t.Errorf("network-status %+v, want one entry for eth0 and one for net1", st)
		}
	})

	t.Run("DEL through Multus removes everything", func(t *testing.T) {
		if err := teststack.InNetNS(node.NetNS, func() error {
			return cni.DelNetworkList(context.Background(), list, s.RuntimeConf("eth0"))
		}); err != nil {
			t.Fatalf("DEL through Multus: %v", err)
		}
		if ports := nodePodPorts(t, node); len(ports) != 0 {
			t.Errorf("ports left: %v", ports)
		}
		c.waitPoolHolders(t, p100, holdNone())
	})
}
