package e2e

// Helpers that run antrea-agent processes on the local cluster's nodes and call CNI the way a
// container runtime does (libcni, a configuration list with the primary plugins and `antrea`
// chained), or the way Multus does (one NetworkAttachmentDefinition's configuration).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/libcni"
	"github.com/containernetworking/cni/pkg/invoke"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/plugins/pkg/ns"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
)

const (
	secondaryBridge  = "br-secondary"
	agentStartup     = 60 * time.Second
	referencePlugins = "/usr/lib/cni"
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
		if buildErr = os.MkdirAll(binDir, 0o755); buildErr != nil {
			return
		}
		for out, pkg := range map[string]string{"antrea-agent": "./cmd/antrea-agent", "antrea": "./cmd/antrea-cni"} {
			cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, out), pkg)
			cmd.Dir = teststack.RepoRoot(t)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", pkg, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binDir
}

// agentConfig is antrea-agent.conf as the tests write it.
type agentConfig struct {
	FeatureGates     map[string]bool `json:"featureGates,omitempty"`
	OVSDatapathType  string          `json:"ovsDatapathType,omitempty"`
	CNISocket        string          `json:"cniSocket,omitempty"`
	SecondaryNetwork struct {
		OVSBridges []agentBridge `json:"ovsBridges,omitempty"`
	} `json:"secondaryNetwork"`
}

type agentBridge struct {
	BridgeName         string   `json:"bridgeName"`
	PhysicalInterfaces []string `json:"physicalInterfaces,omitempty"`
}

// agentProcess is one antrea-agent running for one node.
type agentProcess struct {
	node   clusterNode
	dir    string
	socket string
	// metrics is the address of its /metrics, in its node's network namespace.
	metrics string
	args    []string
	log     *os.File
	cmd     *exec.Cmd
	done    chan struct{}
}

// defaultAgentConfig has both gates on, the userspace datapath and the node's uplink.
func defaultAgentConfig(node clusterNode) agentConfig {
	var cfg agentConfig
	cfg.FeatureGates = map[string]bool{"SecondaryNetwork": true, "AntreaIPAM": true}
	cfg.OVSDatapathType = "netdev"
	cfg.SecondaryNetwork.OVSBridges = []agentBridge{{BridgeName: secondaryBridge, PhysicalInterfaces: []string{node.Uplink}}}
	return cfg
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
	cfg.CNISocket = filepath.Join(dir, "cni.sock")
	data, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "antrea-agent.conf")
	if err := os.WriteFile(confPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	kubeconfig := c.kubeconfig
	if v, ok := c.Lookup(fmt.Sprintf("NODE_%d_ADMIN_KUBECONFIG", node.Index)); ok {
		kubeconfig = v
	}
	// A port of its own: agents of several tests may share a node's network namespace.
	a := &agentProcess{node: node, dir: dir, socket: cfg.CNISocket, metrics: freeLoopbackAddress(t, node)}
	a.args = netnsCommand(node.NetNS, filepath.Join(bins, "antrea-agent"), "--config", confPath,
		"--node-name", node.Name, "--kubeconfig", kubeconfig, "--ovsdb", node.OVSDB,
		"--reconcile-interval", "2s", "--metrics-bind-address", a.metrics, "-v", "2")
	if a.log, err = os.Create(filepath.Join(dir, "agent.log")); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		a.stop(t)
		if t.Failed() {
			data, _ := os.ReadFile(a.log.Name())
			t.Logf("antrea-agent log of %s, its warnings and errors:\n%s\nand its last lines:\n%s",
				node.Name, tail(warningsAndErrors(string(data)), 60), tail(string(data), 60))
		}
		a.log.Close()
		_ = os.RemoveAll(dir)
		if _, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "--if-exists", "del-br", secondaryBridge); err != nil {
			t.Errorf("delete %s on %s: %v", secondaryBridge, node.Name, err)
		}
	})
	a.start(t)
	return a
}

// warningsAndErrors keeps klog's W and E lines: the ones a failure is most often explained by,
// which a tail of a busy log has long scrolled past.
func warningsAndErrors(log string) string {
	var kept []string
	for line := range strings.Lines(log) {
		if strings.HasPrefix(line, "W") || strings.HasPrefix(line, "E") {
			kept = append(kept, strings.TrimSuffix(line, "\n"))
		}
	}
	return strings.Join(kept, "\n")
}

func tail(s string, lines int) string {
	all := strings.Split(s, "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}

func (a *agentProcess) start(t *testing.T) {
	t.Helper()
	a.cmd = exec.Command(a.args[0], a.args[1:]...)
	a.cmd.Stdout, a.cmd.Stderr = a.log, a.log
	a.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start antrea-agent: %v", err)
	}
	a.done = make(chan struct{})
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	if err := eventually(agentStartup, func() error {
		select {
		case <-a.done:
			return fmt.Errorf("antrea-agent exited: %s", a.cmd.ProcessState)
		default:
		}
		return a.status()
	}); err != nil {
		data, _ := os.ReadFile(a.log.Name())
		t.Fatalf("antrea-agent on %s not ready: %v\n%s", a.node.Name, err, tail(string(data), 40))
	}
}

// stop ends the agent with SIGTERM (SIGKILL after 10s).
func (a *agentProcess) stop(t *testing.T) {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	select {
	case <-a.done:
		return
	default:
	}
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-a.done:
	case <-time.After(10 * time.Second):
		a.kill()
	}
}

// kill ends the agent with SIGKILL, as a crash would.
func (a *agentProcess) kill() {
	_ = syscall.Kill(-a.cmd.Process.Pid, syscall.SIGKILL)
	<-a.done
}

// cniConfig is how the runtime finds plugins: the project's shim and the reference plugins.
func (a *agentProcess) cniConfig() *libcni.CNIConfig {
	return libcni.NewCNIConfigWithCacheDir([]string{binDir, referencePlugins}, filepath.Join(a.dir, "cni-cache"), nil)
}

func (a *agentProcess) status() error {
	conf, err := libcni.NetworkPluginConfFromBytes([]byte(`{"cniVersion":"1.1.0","name":"status","type":"antrea","cniSocket":"` + a.socket + `"}`))
	if err != nil {
		return err
	}
	conflist, err := libcni.ConfListFromConf(conf) //nolint:staticcheck // SA1019: a single .conf is what a runtime still converts, as containerd does
	if err != nil {
		return err
	}
	return a.cniConfig().GetStatusNetworkList(context.Background(), conflist)
}

// chainedConfList is a node's primary network (bridge + host-local on a test bridge) with
// `antrea` chained after it, as the install step writes it.
func (a *agentProcess) chainedConfList(t *testing.T, cniVersion string) *libcni.NetworkConfigList {
	t.Helper()
	conf := fmt.Sprintf(`{"cniVersion": %q, "name": "e2e-primary", "plugins": [
	  {"type": "bridge", "bridge": "pvprim0", "isGateway": false, "ipMasq": false,
	   "ipam": {"type": "host-local", "subnet": "10.251.%d.0/24", "dataDir": %q}},
	  {"type": "antrea", "cniSocket": %q}]}`, cniVersion, a.node.Index, filepath.Join(a.dir, "host-local"), a.socket)
	list, err := libcni.ConfListFromBytes([]byte(conf))
	if err != nil {
		t.Fatalf("conflist: %v", err)
	}
	return list
}

// sandbox is a Pod sandbox made by the test in place of a container runtime: a network namespace
// and a container ID for a Pod object.
type sandbox struct {
	pod         *corev1.Pod
	netns       string // name under /var/run/netns
	containerID string
}

func (s *sandbox) netnsPath() string { return "/var/run/netns/" + s.netns }

func (s *sandbox) runtimeConf(ifName string) *libcni.RuntimeConf {
	return &libcni.RuntimeConf{
		ContainerID: s.containerID,
		NetNS:       s.netnsPath(),
		IfName:      ifName,
		Args: [][2]string{
			{"IgnoreUnknown", "true"},
			{"K8S_POD_NAMESPACE", s.pod.Namespace},
			{"K8S_POD_NAME", s.pod.Name},
			{"K8S_POD_INFRA_CONTAINER_ID", s.containerID},
			{"K8S_POD_UID", string(s.pod.UID)},
		},
	}
}

// newSandbox creates the Pod object (bound to node, never run by a kubelet) and its netns.
func (c *testCluster) newSandbox(t *testing.T, namespace, name string, node clusterNode, annotation string) *sandbox {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{NodeName: node.Name, AutomountServiceAccountToken: new(false),
			Containers: []corev1.Container{{Name: "c", Image: "none"}}},
	}
	if annotation != "" {
		pod.Annotations = map[string]string{nadv1.NetworkAttachmentAnnot: annotation}
	}
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
	s := &sandbox{pod: pod, netns: uniqueName("pv-sb-"), containerID: uniqueName("c0ffee") + uniqueName("")}
	mustRun(t, "ip", "netns", "add", s.netns)
	mustRun(t, netnsCommand(s.netns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")...)
	mustRun(t, "ip", "-n", s.netns, "link", "set", "lo", "up")
	t.Cleanup(func() { _, _ = tryRun("ip", "netns", "del", s.netns) })
	return s
}

// inNode runs f in the node's network namespace (where its OVS and agent live), so that plugins
// exec'd by libcni run there, as they would on that node.
func inNode(node clusterNode, f func() error) error {
	if node.NetNS == "" {
		return f()
	}
	return ns.WithNetNSPath("/var/run/netns/"+node.NetNS, func(ns.NetNS) error { return f() })
}

// addChained runs CNI ADD of the chained list for the sandbox's primary interface eth0.
func (a *agentProcess) addChained(t *testing.T, s *sandbox, cniVersion string) (types.Result, error) {
	t.Helper()
	list := a.chainedConfList(t, cniVersion)
	var res types.Result
	err := inNode(a.node, func() error {
		var err error
		res, err = a.cniConfig().AddNetworkList(context.Background(), list, s.runtimeConf("eth0"))
		return err
	})
	return res, err
}

// delChained runs CNI DEL of the chained list.
func (a *agentProcess) delChained(t *testing.T, s *sandbox, cniVersion string) error {
	t.Helper()
	list := a.chainedConfList(t, cniVersion)
	return inNode(a.node, func() error {
		return a.cniConfig().DelNetworkList(context.Background(), list, s.runtimeConf("eth0"))
	})
}

// execChained runs the `antrea` entry of the chained list alone, with prevResult as the primary
// plugin's result, the way libcni runs one plugin of a list. It serves verbs the reference
// primary plugins cannot repeat (a second ADD) or get wrong (CHECK of the bridge plugin 1.1 fails
// once its bridge's MAC changed).
func (a *agentProcess) execChained(t *testing.T, s *sandbox, command, cniVersion string, prevResult types.Result) (types.Result, error) {
	t.Helper()
	conf := map[string]any{"cniVersion": cniVersion, "name": "e2e-primary", "type": "antrea", "cniSocket": a.socket}
	if prevResult != nil {
		conf["prevResult"] = prevResult
	}
	stdin, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	rt := s.runtimeConf("eth0")
	args := &invoke.Args{Command: command, ContainerID: rt.ContainerID, NetNS: rt.NetNS, IfName: rt.IfName,
		PluginArgs: rt.Args, Path: binDir + ":" + referencePlugins}
	plugin := filepath.Join(binDir, "antrea")
	var res types.Result
	err = inNode(a.node, func() error {
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
	m["cniSocket"] = a.socket
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
		&nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
			Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}, metav1.CreateOptions{})
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
