package e2e

// Helpers that run antrea-agent processes on the local cluster's nodes and call CNI the way a
// container runtime does (libcni, a configuration list with the primary plugins and `antrea`
// chained), or the way Multus does (one NetworkAttachmentDefinition's configuration).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
)

const (
	agentStartup = 60 * time.Second
)

var (
	buildOnce sync.Once
	binDir    string
	buildErr  error
)

// projectBinaries builds antrea-agent and the antrea shim once per test binary.
func projectBinaries(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		binDir = filepath.Join(teststack.RepoRoot(t), "_output", "e2e-bin")
		buildErr = teststack.BuildBinaries(context.Background(), teststack.RepoRoot(t), binDir,
			map[string]string{"antrea-agent": "./cmd/antrea-agent", "antrea": "./cmd/antrea-cni"})
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// agentConfig is antrea-agent.conf as the tests write it.
type agentConfig = teststack.AgentConfig

// agentProcess is one antrea-agent running for one node.
type agentProcess struct {
	*teststack.Agent
	node clusterNode
	dir  string
	// metrics is the address of its /metrics, in its node's network namespace.
	metrics string
}

// startAgent runs antrea-agent for node (inside its network namespace), waits until it serves
// CNI STATUS, and stops it, and removes the secondary bridge, when the test ends.
func (c *testCluster) startAgent(t *testing.T, node clusterNode, cfg agentConfig) *agentProcess {
	t.Helper()
	bins := projectBinaries(t)
	dir, err := os.MkdirTemp("", "pv-agent-")
	if err != nil {
		t.Fatal(err)
	}
	// A port of its own: agents of several tests may share a node's network namespace.
	metrics := freeLoopbackAddress(t, node)
	agent, err := teststack.NewAgent(teststack.AgentSpec{Binary: filepath.Join(bins, "antrea-agent"), ShimDir: bins,
		Dir: dir, NetNS: node.NetNS, NodeName: node.Name, Kubeconfig: c.kubeconfig, OVSDB: node.OVSDB, Config: cfg,
		Args: []string{"--reconcile-interval", "2s", "--metrics-bind-address", metrics, "-v", "2"}})
	if err != nil {
		t.Fatal(err)
	}
	a := &agentProcess{Agent: agent, node: node, dir: dir, metrics: metrics}
	t.Cleanup(func() {
		a.Close()
		if t.Failed() {
			log := a.Log()
			t.Logf("antrea-agent log of %s, its warnings and errors:\n%s\nand its last lines:\n%s",
				node.Name, teststack.Tail(teststack.WarningsAndErrors(log), 60), teststack.Tail(log, 60))
		}
		_ = os.RemoveAll(dir)
		if _, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "--if-exists", "del-br", teststack.SecondaryBridge); err != nil {
			t.Errorf("delete %s on %s: %v", teststack.SecondaryBridge, node.Name, err)
		}
	})
	a.start(t)
	return a
}

// start starts the agent (again) and waits until it serves CNI STATUS, which is after its first
// reconciliation.
func (a *agentProcess) start(t *testing.T) {
	t.Helper()
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.WaitReady(context.Background(), agentStartup); err != nil {
		t.Fatalf("antrea-agent on %s: %v", a.node.Name, err)
	}
}

// cniConfig is how the runtime finds plugins: the project's shim and the reference plugins.
func (a *agentProcess) cniConfig() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{binDir, teststack.ReferencePlugins}, filepath.Join(a.dir, "cni-cache"), nil)
}

// chainedConfList is a node's primary network (bridge + host-local on a test bridge) with
// `antrea` chained after it, as the install step writes it.
func (a *agentProcess) chainedConfList(t *testing.T, cniVersion string) *libcni.NetworkConfigList {
	t.Helper()
	return a.primaryChain(t, cniVersion, false)
}

// primaryChain is chainedConfList, with a default route from the primary network or not.
func (a *agentProcess) primaryChain(t *testing.T, cniVersion string, defaultRoute bool) *libcni.NetworkConfigList {
	t.Helper()
	list, err := teststack.PrimaryChain{Name: "e2e-primary", CNIVersion: cniVersion, Bridge: "pvprim0",
		Subnet: fmt.Sprintf("10.251.%d.0/24", a.node.Index), HostLocalDir: filepath.Join(a.dir, "host-local"),
		DefaultRoute: defaultRoute, Socket: a.Socket}.ConfList()
	if err != nil {
		t.Fatalf("conflist: %v", err)
	}
	return list
}

// sandbox is a Pod sandbox made by the test in place of a container runtime.
type sandbox = teststack.Sandbox

// newSandbox creates the Pod object (bound to node, never run by a kubelet) and its netns.
func (c *testCluster) newSandbox(t *testing.T, namespace, name string, node clusterNode, annotation string) *sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	pod := teststack.SandboxPod(node.Name, namespace, name, annotation)
	created, err := c.client.CoreV1().Pods(namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", namespace, name, err)
	}
	return newPodSandbox(t, created)
}

// newPodSandbox makes a sandbox (netns and container ID) for an existing Pod: its first, or
// another one, as the kubelet makes after a sandbox failed.
func newPodSandbox(t *testing.T, pod *corev1.Pod) *sandbox {
	t.Helper()
	s := &sandbox{Pod: pod, NetNS: uniqueName("pv-sb-"), ContainerID: uniqueName("c0ffee") + uniqueName("")}
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	if err := teststack.NewPodNetNS(ctx, s.NetNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = tryRun("ip", "netns", "del", s.NetNS) })
	return s
}

// addChained runs CNI ADD of the chained list for the sandbox's primary interface eth0.
func (a *agentProcess) addChained(t *testing.T, s *sandbox, cniVersion string) (types.Result, error) {
	t.Helper()
	list := a.chainedConfList(t, cniVersion)
	var res types.Result
	err := teststack.InNetNS(a.node.NetNS, func() error {
		var err error
		res, err = a.cniConfig().AddNetworkList(context.Background(), list, s.RuntimeConf("eth0"))
		return err
	})
	return res, err
}

// delChained runs CNI DEL of the chained list.
func (a *agentProcess) delChained(t *testing.T, s *sandbox, cniVersion string) error {
	t.Helper()
	list := a.chainedConfList(t, cniVersion)
	return teststack.InNetNS(a.node.NetNS, func() error {
		return a.cniConfig().DelNetworkList(context.Background(), list, s.RuntimeConf("eth0"))
	})
}

// execChained runs the `antrea` entry of the chained list alone, with prevResult as the primary
// plugin's result, the way libcni runs one plugin of a list. It serves verbs the reference
// primary plugins cannot repeat (a second ADD) or get wrong (CHECK of the bridge plugin 1.1 fails
// once its bridge's MAC changed).
func (a *agentProcess) execChained(t *testing.T, s *sandbox, command, cniVersion string, prevResult types.Result) (types.Result, error) {
	t.Helper()
	conf := map[string]any{"cniVersion": cniVersion, "name": "e2e-primary", "type": "antrea", "cniSocket": a.Socket}
	if prevResult != nil {
		conf["prevResult"] = prevResult
	}
	stdin, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	rt := s.RuntimeConf("eth0")
	args := &invoke.Args{Command: command, ContainerID: rt.ContainerID, NetNS: rt.NetNS, IfName: rt.IfName,
		PluginArgs: rt.Args, Path: binDir + ":" + teststack.ReferencePlugins}
	plugin := filepath.Join(binDir, "antrea")
	var res types.Result
	err = teststack.InNetNS(a.node.NetNS, func() error {
		if command == "ADD" {
			var err error
			res, err = invoke.ExecPluginWithResult(context.Background(), plugin, stdin, args, nil)
			return err
		}
		return invoke.ExecPluginWithoutResult(context.Background(), plugin, stdin, args, nil)
	})
	return res, err
}

// delegateConf is a NetworkAttachmentDefinition's configuration as Multus passes it to a delegate,
// with the agent's socket (a shared NAD cannot name a per-node socket; Multus nodes use the
// default path).
func (a *agentProcess) delegateConf(t *testing.T, nadConfig string) *libcni.NetworkConfigList {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(nadConfig), &m); err != nil {
		t.Fatal(err)
	}
	m["cniSocket"] = a.Socket
	if _, ok := m["name"]; !ok {
		m["name"] = "delegate"
	}
	data, _ := json.Marshal(m)
	conf, err := libcni.NetworkPluginConfFromBytes(data)
	if err != nil {
		t.Fatal(err)
	}
	list, err := libcni.ConfListFromConf(conf) //nolint:staticcheck // SA1019: a single .conf is what a runtime still converts, as containerd does
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// ipam clients and objects ------------------------------------------------------------------

func (c *testCluster) crdClient(t *testing.T) versioned.Interface {
	t.Helper()
	cl, err := versioned.NewForConfig(c.RestConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

func (c *testCluster) nadClient(t *testing.T) nadclient.Interface {
	t.Helper()
	cl, err := nadclient.NewForConfig(c.RestConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// createPool creates an IPPool and deletes it when the test ends.
func (c *testCluster) createPool(t *testing.T, name string, spec v1beta1.IPPoolSpec) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	cl := c.crdClient(t)
	if _, err := cl.CrdV1beta1().IPPools().Create(ctx, &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create IPPool %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cl.CrdV1beta1().IPPools().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// createNAD creates a NetworkAttachmentDefinition with the given spec.config.
func (c *testCluster) createNAD(t *testing.T, namespace, name, config string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	_, err := c.nadClient(t).K8sCniCncfIoV1().NetworkAttachmentDefinitions(namespace).Create(ctx,
		teststack.NAD(namespace, name, config), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create NetworkAttachmentDefinition %s/%s: %v", namespace, name, err)
	}
}

// podEvents returns "reason: message" of the Events about a Pod.
func (c *testCluster) podEvents(t *testing.T, namespace, name string) []string {
	t.Helper()
	list, err := c.client.CoreV1().Events(namespace).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatalf("list events: %v", err)
	}
	var out []string
	for _, e := range list.Items {
		out = append(out, e.Reason+": "+e.Message)
	}
	return out
}

// nodePorts returns the Pod ports on the node's secondary bridge, as "name tag".
func nodePodPorts(t *testing.T, node clusterNode) []string {
	t.Helper()
	out, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "--format=csv", "--no-headings",
		"--columns=name,tag", "find", "Port", "external_ids:podvlan-role=pod")
	if err != nil {
		t.Fatalf("list ports: %v", err)
	}
	var ports []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			ports = append(ports, strings.ReplaceAll(l, ",", " "))
		}
	}
	return ports
}

// hostVeths returns the agent-made host ends (pvl...) in the node's namespace.
func hostVeths(t *testing.T, node clusterNode) []string {
	t.Helper()
	out := mustRun(t, netnsCommand(node.NetNS, "ip", "-o", "link", "show")...)
	var names []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) > 1 && strings.HasPrefix(f[1], "pvl") {
			names = append(names, strings.SplitN(strings.TrimSuffix(f[1], ":"), "@", 2)[0])
		}
	}
	return names
}

// resultIPs returns the addresses of a CNI result.
func resultIPs(t *testing.T, r types.Result) []string {
	t.Helper()
	res, err := current.NewResultFromResult(r)
	if err != nil {
		t.Fatal(err)
	}
	var ips []string
	for _, ip := range res.IPs {
		ips = append(ips, ip.Address.String())
	}
	return ips
}
