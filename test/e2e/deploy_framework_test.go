package e2e

// Helpers for the tests that install the project the way a user does: build/yamls/crds.yml and
// antrea.yml applied with kubectl, the agent as a DaemonSet Pod on the real node, the examples of
// docs/examples applied verbatim, Pods started by the kubelet and containerd.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/cniinstall"
)

const (
	systemNamespace = "kube-system"
	agentDaemonSet  = "antrea-agent"
	controllerName  = "antrea-controller"
	configMapName   = "antrea-config"
	// rolloutTimeout bounds a DaemonSet or Deployment rollout on the local cluster.
	rolloutTimeout = 3 * time.Minute
	// cniPluginBinary is where the install step puts the shim on the Node.
	cniPluginBinary = "/opt/cni/bin/antrea"
)

// deployment is one install of the manifests on the local cluster, seen from a test.
type deployment struct {
	c        *testCluster
	node     clusterNode // the real node, where the DaemonSet Pod runs
	manifest string      // build/yamls/antrea.yml
	crds     string      // build/yamls/crds.yml
	examples string      // docs/examples
	// The real node's primary CNI configuration before the install, restored by the uninstall.
	conflistPath  string
	conflistBytes []byte
	binaryBefore  bool
}

// newDeployment checks that the manifests can run on this cluster (or skips the test saying what
// is missing) and records node-1's CNI configuration.
func newDeployment(t *testing.T, c *testCluster) *deployment {
	t.Helper()
	root := teststack.RepoRoot(t)
	d := &deployment{
		c:            c,
		node:         c.node(t, 1),
		manifest:     filepath.Join(root, "build", "yamls", "antrea.yml"),
		crds:         filepath.Join(root, "build", "yamls", "crds.yml"),
		examples:     filepath.Join(root, "docs", "examples"),
		conflistPath: c.CNIConflist,
	}
	if missing := d.missingImages(t); len(missing) > 0 {
		t.Skipf("images %v are not in the local cluster's containerd: run hack/images.sh (make test does)", missing)
	}
	var err error
	if d.conflistBytes, err = os.ReadFile(d.conflistPath); err != nil {
		t.Fatalf("read node-1's CNI configuration: %v", err)
	}
	if chained, err := cniinstall.HasEntry(d.conflistBytes); err != nil || chained {
		t.Fatalf("%s already chains antrea (%v): a previous install was not removed; "+
			"run antrea-install-cni --uninstall --cni-conf-dir=/etc/cni/net.d --cni-bin-dir=/opt/cni/bin, or restart the local cluster",
			d.conflistPath, err)
	}
	_, err = os.Stat(cniPluginBinary)
	d.binaryBefore = err == nil
	// The agent leaves its bridge when it goes (as Antrea's does); one left by an earlier run
	// would hide whether this agent makes it.
	if bridgeExists(t, d.node, teststack.SecondaryBridge) {
		t.Logf("deleting %s left on %s by an earlier run", teststack.SecondaryBridge, d.node.Name)
		mustRun(t, "ovs-vsctl", "--db="+d.node.OVSDB, "--timeout=30", "del-br", teststack.SecondaryBridge)
	}
	for _, ns := range []string{"demo", "networks"} {
		if _, err := c.client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); err == nil {
			t.Fatalf("namespace %s exists: the examples of docs/examples use it; delete it first", ns)
		}
	}
	return d
}

var imageRef = regexp.MustCompile(`(?m)^\s*image:\s*(\S+)\s*$`)

// missingImages returns the images antrea.yml names that the real node's containerd does not have.
func (d *deployment) missingImages(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(d.manifest)
	if err != nil {
		t.Fatalf("read %s: %v", d.manifest, err)
	}
	out, err := tryRun("ctr", "--address", d.c.ContainerdSock, "--namespace", d.c.ContainerdNamespace,
		"images", "ls", "-q")
	if err != nil {
		t.Fatalf("list containerd images: %v", err)
	}
	have := strings.Fields(out)
	var missing []string
	for _, m := range imageRef.FindAllStringSubmatch(string(data), -1) {
		if !slices.Contains(have, m[1]) && !slices.Contains(missing, m[1]) {
			missing = append(missing, m[1])
		}
	}
	return missing
}

// kubectlLong runs kubectl with a timeout of its own (rollouts take longer than an API call).
func (c *testCluster) kubectlLong(t *testing.T, timeout time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout+10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.kubectlBin, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("kubectl %s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// example returns the path of a file of docs/examples.
func (d *deployment) example(name string) string { return filepath.Join(d.examples, name) }

// install applies the manifests, the CRDs first as the docs say, and waits for the agent on the
// real node and for the controller.
func (d *deployment) install(t *testing.T) {
	t.Helper()
	d.c.kubectl(t, "apply", "-f", d.crds)
	d.c.kubectl(t, "wait", "--for=condition=established", "--timeout=60s", "-f", d.crds)
	d.c.kubectl(t, "apply", "-f", d.manifest)
	d.waitRollouts(t)
}

// waitRollouts waits until the agent DaemonSet and the controller Deployment run their current
// Pods.
func (d *deployment) waitRollouts(t *testing.T) {
	t.Helper()
	timeout := "--timeout=" + rolloutTimeout.String()
	d.c.kubectlLong(t, rolloutTimeout, "-n", systemNamespace, "rollout", "status", "daemonset/"+agentDaemonSet, timeout)
	d.c.kubectlLong(t, rolloutTimeout, "-n", systemNamespace, "rollout", "status", "deployment/"+controllerName, timeout)
}

// restart restarts workloads the way a user does after editing the ConfigMap, and waits for them.
func (d *deployment) restart(t *testing.T, workloads ...string) {
	t.Helper()
	d.c.kubectl(t, append([]string{"-n", systemNamespace, "rollout", "restart"}, workloads...)...)
	for _, w := range workloads {
		d.c.kubectlLong(t, rolloutTimeout, "-n", systemNamespace, "rollout", "status", w, "--timeout="+rolloutTimeout.String())
	}
}

// agentPods returns the agent's Pods (not being deleted).
func (d *deployment) agentPods(t *testing.T) []corev1.Pod {
	t.Helper()
	list, err := d.c.client.CoreV1().Pods(systemNamespace).List(context.Background(), metav1.ListOptions{
		LabelSelector: "app=antrea,component=antrea-agent"})
	if err != nil {
		t.Fatalf("list agent Pods: %v", err)
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			pods = append(pods, p)
		}
	}
	return pods
}

// editConfig changes one file (key) of the ConfigMap as a user editing it would: line by line,
// comments kept.
func (d *deployment) editConfig(t *testing.T, key string, edits []lineEdit) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	cms := d.c.client.CoreV1().ConfigMaps(systemNamespace)
	cm, err := cms.Get(ctx, configMapName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get ConfigMap %s: %v", configMapName, err)
	}
	edited, err := applyLineEdits(cm.Data[key], edits)
	if err != nil {
		t.Fatalf("edit %s: %v\n%s", key, err, cm.Data[key])
	}
	cm.Data[key] = edited
	if _, err := cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatalf("update ConfigMap %s: %v", configMapName, err)
	}
}

// lineEdit replaces the one line whose trimmed text is old by new (new may span lines; it keeps
// old's indentation).
type lineEdit struct{ old, new string }

func applyLineEdits(text string, edits []lineEdit) (string, error) {
	lines := strings.Split(text, "\n")
	for _, e := range edits {
		found := -1
		for i, l := range lines {
			if strings.TrimSpace(l) == e.old {
				if found >= 0 {
					return "", fmt.Errorf("line %q appears twice", e.old)
				}
				found = i
			}
		}
		if found < 0 {
			return "", fmt.Errorf("no line %q", e.old)
		}
		indent := lines[found][:len(lines[found])-len(strings.TrimLeft(lines[found], " "))]
		var repl []string
		for _, l := range strings.Split(e.new, "\n") {
			repl = append(repl, indent+l)
		}
		lines = slices.Concat(lines[:found], repl, lines[found+1:])
	}
	return strings.Join(lines, "\n"), nil
}

// waitRunning waits until a Pod created from an example runs with all containers ready.
func (c *testCluster) waitRunning(t *testing.T, namespace, name string) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podStartTimeout)
	defer cancel()
	var last *corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := c.client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // transient: keep polling until the deadline
		}
		last = p
		return p.Status.Phase == corev1.PodRunning && podReady(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not running after %v: %v; last status: %s; events: %v", namespace, name, podStartTimeout,
			err, describePodStatus(last), c.podEvents(t, namespace, name))
	}
	return last
}

// deleteAndWait deletes a Pod gracefully and waits until the kubelet has torn it down.
func (c *testCluster) deleteAndWait(t *testing.T, namespace, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podDeleteTimeout+apiCallTimeout)
	defer cancel()
	if err := c.deletePod(ctx, namespace, name); err != nil {
		t.Fatalf("delete pod %s/%s: %v", namespace, name, err)
	}
}

// ensureDefaultServiceAccount gives a namespace its default ServiceAccount: the local cluster runs
// no serviceaccount controller, which would make it in a real cluster.
func (c *testCluster) ensureDefaultServiceAccount(t *testing.T, namespace string) {
	t.Helper()
	_, err := c.client.CoreV1().ServiceAccounts(namespace).Create(context.Background(),
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceAccount default in %s: %v", namespace, err)
	}
}

// podExec runs a command in a Pod's container through the API server and the kubelet.
func (c *testCluster) podExec(namespace, pod string, command ...string) (string, error) {
	return c.tryKubectl(append([]string{"-n", namespace, "exec", pod, "--"}, command...)...)
}

// podPort is the OVS port of one secondary interface of a Pod.
type podPort struct {
	Name   string
	Tag    string
	OFPort string
}

// findPodPort returns the OVS port the agent made for a Pod's interface, and whether there is one.
func findPodPort(t *testing.T, node clusterNode, namespace, pod, ifName string) (podPort, bool) {
	t.Helper()
	out, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "--format=csv", "--no-headings",
		"--columns=name,tag", "find", "Port", "external_ids:podvlan-pod-namespace="+namespace,
		"external_ids:podvlan-pod-name="+pod, "external_ids:podvlan-ifname="+ifName)
	if err != nil {
		t.Fatalf("find port of %s/%s %s: %v", namespace, pod, ifName, err)
	}
	rows := strings.Fields(strings.TrimSpace(out))
	if len(rows) == 0 {
		return podPort{}, false
	}
	if len(rows) > 1 {
		t.Fatalf("%d ports for %s/%s %s: %v", len(rows), namespace, pod, ifName, rows)
	}
	name, tag, _ := strings.Cut(rows[0], ",")
	name = strings.Trim(name, `"`)
	ofport, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "get", "Interface", name, "ofport")
	if err != nil {
		t.Fatalf("ofport of %s: %v", name, err)
	}
	return podPort{Name: name, Tag: tag, OFPort: strings.TrimSpace(ofport)}, true
}

// bridgeExists reports whether the node's OVS has the bridge.
func bridgeExists(t *testing.T, node clusterNode, bridge string) bool {
	t.Helper()
	_, err := tryRun("ovs-vsctl", "--db="+node.OVSDB, "--timeout=30", "br-exists", bridge)
	return err == nil
}

// ipv4Addrs returns the IPv4 addresses with prefix of an interface inside a Pod ("" for none),
// or an error when the interface does not exist.
func (c *testCluster) ipv4Addrs(namespace, pod, ifName string) (string, error) {
	out, err := c.podExec(namespace, pod, "ip", "-o", "-4", "addr", "show", "dev", ifName)
	if err != nil {
		return "", err
	}
	var addrs []string
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				addrs = append(addrs, f[i+1])
			}
		}
	}
	return strings.Join(addrs, " "), nil
}

// linkState is what must not change in a Pod's interface while the agent restarts.
func (c *testCluster) linkState(t *testing.T, namespace, pod, ifName string) string {
	t.Helper()
	link, err := c.podExec(namespace, pod, "cat", "/sys/class/net/"+ifName+"/ifindex", "/sys/class/net/"+ifName+"/address")
	if err != nil {
		t.Fatalf("link %s of %s/%s: %v", ifName, namespace, pod, err)
	}
	addrs, err := c.ipv4Addrs(namespace, pod, ifName)
	if err != nil {
		t.Fatalf("addresses of %s in %s/%s: %v", ifName, namespace, pod, err)
	}
	return strings.Join(strings.Fields(link), " ") + " " + addrs
}

// pingFrom pings addr from inside a Pod through one interface.
func (c *testCluster) pingFrom(namespace, pod, ifName, addr string) error {
	out, err := c.podExec(namespace, pod, "ping", "-c", "3", "-W", "2", "-I", ifName, addr)
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}

// watchChain polls node-1's CNI configuration until the returned function is called, which
// returns how many times it was seen without the antrea entry.
func (d *deployment) watchChain(t *testing.T) func() int {
	t.Helper()
	stop := make(chan struct{})
	result := make(chan int)
	go func() {
		gaps, chained := 0, true
		for {
			select {
			case <-stop:
				result <- gaps
				return
			case <-time.After(20 * time.Millisecond):
			}
			data, err := os.ReadFile(d.conflistPath)
			has, perr := cniinstall.HasEntry(data)
			now := err == nil && perr == nil && has
			if chained && !now {
				gaps++
			}
			chained = now
		}
	}()
	return func() int {
		close(stop)
		return <-result
	}
}
