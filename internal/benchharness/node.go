package benchharness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
)

// Node is a bench Node: a network namespace of its own with private Open vSwitch daemons
// (userspace datapath), where an antrea-agent runs and Pod host ends live. A Node made for an
// agent also has a Node object and a point-to-point link to the root namespace through which it
// reaches the API server; the floor's Node needs neither. Nothing of the local cluster's own
// nodes is touched, so benchmarks never disturb tests that run at the same time.
type Node struct {
	Name  string
	NetNS string
	// Dir holds the OVS daemons' files and the agents' files.
	Dir string
	// OVSDB is the OVSDB endpoint, "unix:<Dir>/ovs/run/db.sock".
	OVSDB string
	// IP is the Node's address (on its link to the root namespace), when it has one.
	IP string

	cluster  *Cluster
	rootLink string
	ovsUp    bool
	object   bool
}

// rootLinkAlias marks the links the harness makes in the root namespace.
const rootLinkAlias = "podvlan bench node link"

// NewNode makes a bench Node; withAPI also gives it a Node object and a route to the API server.
// On error, whatever was made is removed again.
func (c *Cluster) NewNode(ctx context.Context, prefix string, withAPI bool) (_ *Node, err error) {
	name := UniqueName(prefix)
	n := &Node{Name: name, NetNS: name, Dir: filepath.Join(c.Root, "_output", "bench", "run", name), cluster: c}
	n.OVSDB = "unix:" + filepath.Join(n.Dir, "ovs", "run", "db.sock")
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := os.MkdirAll(n.Dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := Run(ctx, "ip", "netns", "add", n.NetNS); err != nil {
		return nil, err
	}
	if _, err := n.Exec(ctx, "ip", "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	if withAPI {
		if err := n.linkToRoot(ctx); err != nil {
			return nil, err
		}
	}
	n.ovsUp = true
	if _, err := Run(ctx, "bash", filepath.Join(c.Root, "hack", "ovs.sh"), "up", filepath.Join(n.Dir, "ovs"), n.NetNS); err != nil {
		return nil, err
	}
	if withAPI {
		if err := n.createObject(ctx); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// linkToRoot connects the Node to the root namespace with a veth on a /30 of the shared address
// space (100.64.0.0/10), and routes the API server's address through it.
func (n *Node) linkToRoot(ctx context.Context) error {
	apiIP, err := apiServerIP(n.cluster.Config.Host)
	if err != nil {
		return err
	}
	base := [4]byte{100, byte(64 + rand.IntN(64)), byte(rand.IntN(256)), byte(4 * rand.IntN(64))}
	rootIP := net.IPv4(base[0], base[1], base[2], base[3]+1).String()
	n.IP = net.IPv4(base[0], base[1], base[2], base[3]+2).String()
	n.rootLink = UniqueName("pvbr")
	steps := [][]string{
		{"ip", "link", "add", n.rootLink, "type", "veth", "peer", "name", "mgmt0", "netns", n.NetNS},
		{"ip", "link", "set", n.rootLink, "alias", rootLinkAlias},
		{"ip", "addr", "add", rootIP + "/30", "dev", n.rootLink},
		{"ip", "link", "set", n.rootLink, "up"},
		{"ip", "-n", n.NetNS, "addr", "add", n.IP + "/30", "dev", "mgmt0"},
		{"ip", "-n", n.NetNS, "link", "set", "mgmt0", "up"},
		{"ip", "-n", n.NetNS, "route", "add", apiIP + "/32", "via", rootIP},
	}
	for _, s := range steps {
		if _, err := Run(ctx, s...); err != nil {
			return fmt.Errorf("link Node %s to the root namespace: %w", n.Name, err)
		}
	}
	return nil
}

func apiServerIP(host string) (string, error) {
	u, err := url.Parse(host)
	if err != nil {
		return "", fmt.Errorf("API server address %q: %w", host, err)
	}
	ip := net.ParseIP(u.Hostname())
	if ip == nil || ip.IsLoopback() {
		return "", fmt.Errorf("API server address %q: bench Nodes need a non-loopback IP address to route to", host)
	}
	return ip.String(), nil
}

// createObject registers the Node with the API server, with its address and a Ready condition.
func (n *Node) createObject(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	nodes := n.cluster.Kube.CoreV1().Nodes()
	obj, err := nodes.Create(ctx, BenchNodeObject(n.Name), metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("create Node %s: %w", n.Name, err)
	}
	n.object = true
	obj.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}}
	obj.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue,
		Reason: "Bench", LastHeartbeatTime: metav1.Now(), LastTransitionTime: metav1.Now()}}
	if _, err := nodes.UpdateStatus(ctx, obj, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("set status of Node %s: %w", n.Name, err)
	}
	return nil
}

// BenchNodeObject is a Node object for a bench Node: no kubelet runs for it, so it is closed to
// the scheduler (unschedulable, and a NoSchedule taint); the benchmarks bind their Pods to it
// directly.
func BenchNodeObject(name string) *corev1.Node {
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"podvlan.io/bench": "true",
			// The agent's DaemonSet tolerates every taint; this label keeps it off.
			"podvlan.dev/agent": "false"}},
		Spec: corev1.NodeSpec{Unschedulable: true,
			Taints: []corev1.Taint{{Key: "podvlan.io/bench", Value: "true", Effect: corev1.TaintEffectNoSchedule}}},
	}
}

// Close removes everything NewNode made: every OVS bridge (br-secondary included) and the
// daemons, the namespace, the root link and the Node object. It is safe to call more than once.
func (n *Node) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if n.ovsUp {
		if _, err := Run(ctx, "bash", filepath.Join(n.cluster.Root, "hack", "ovs.sh"), "down", filepath.Join(n.Dir, "ovs")); err != nil {
			fmt.Fprintf(os.Stderr, "bench: stop OVS of %s: %v\n", n.Name, err)
		}
		n.ovsUp = false
	}
	if n.rootLink != "" {
		_, _ = Run(ctx, "ip", "link", "del", n.rootLink)
		n.rootLink = ""
	}
	if _, err := os.Stat("/var/run/netns/" + n.NetNS); err == nil {
		if _, err := Run(ctx, "ip", "netns", "del", n.NetNS); err != nil {
			fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		}
	}
	if n.object {
		err := n.cluster.Kube.CoreV1().Nodes().Delete(ctx, n.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			fmt.Fprintf(os.Stderr, "bench: delete Node %s: %v\n", n.Name, err)
		}
		n.object = false
	}
	// Keep the agent's log for a look after the run; the rest goes.
	if data, err := os.ReadFile(filepath.Join(n.Dir, "agent", "agent.log")); err == nil {
		logs := filepath.Join(n.cluster.OutputDir(), "logs")
		if os.MkdirAll(logs, 0o755) == nil {
			_ = os.WriteFile(filepath.Join(logs, n.Name+"-agent.log"), data, 0o644)
		}
	}
	_ = os.RemoveAll(n.Dir)
}

// NetNSPath is the Node namespace's path.
func (n *Node) NetNSPath() string { return "/var/run/netns/" + n.NetNS }

// Do runs f on a thread inside the Node's namespace; programs f starts (plugins) run there too.
func (n *Node) Do(f func() error) error {
	return teststack.InNetNS(n.NetNS, f)
}

// Exec runs a command inside the Node's namespace.
func (n *Node) Exec(ctx context.Context, args ...string) (string, error) {
	return Run(ctx, append([]string{"ip", "netns", "exec", n.NetNS}, args...)...)
}

// Vsctl runs ovs-vsctl against the Node's OVSDB.
func (n *Node) Vsctl(ctx context.Context, args ...string) (string, error) {
	return Run(ctx, append([]string{"ovs-vsctl", "--db=" + n.OVSDB, "--timeout=30"}, args...)...)
}

// Run runs a command and returns its standard output; the error carries its standard error.
func Run(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// ErrNotRoot is returned by benchmarks started without root privileges.
var ErrNotRoot = errors.New("needs root (network namespaces, veths, Open vSwitch)")

// RequireRoot returns ErrNotRoot unless the process runs as root.
func RequireRoot() error {
	if os.Geteuid() != 0 {
		return ErrNotRoot
	}
	return nil
}
