// Package e2e holds end-to-end tests that run against the local cluster started by
// `hack/local-cluster.sh up` (a real node-1 with kubelet and containerd, simulated nodes in network
// namespaces, and an OVS "fabric" switch). Every test skips when no cluster is up.
//
// This file has the Kubernetes side of the helpers: the cluster handle, namespaces and Pods.
// framework_net_test.go has the network side: hand-made netns "pods", throwaway bridges, captures.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/podvlan/podvlan/internal/teststack"
)

// Timeouts for things that normally take a second or two on the local cluster; generous because
// the machine may be busy compiling.
const (
	podStartTimeout  = 2 * time.Minute
	podDeleteTimeout = 2 * time.Minute
	apiCallTimeout   = 30 * time.Second
)

// testCluster is the local cluster as seen by a test.
type testCluster struct {
	*teststack.Cluster
	client     kubernetes.Interface
	kubectlBin string
	kubeconfig string
}

// clusterNode is one node of the local cluster, from the env file.
type clusterNode = teststack.EnvNode

// newTestCluster returns the local cluster, or skips the test when there is none or not as root.
func newTestCluster(t *testing.T) *testCluster {
	t.Helper()
	teststack.RequireRoot(t)
	c := teststack.LocalCluster(t)
	client, err := kubernetes.NewForConfig(c.RestConfig(t))
	if err != nil {
		t.Fatalf("kubernetes client: %v", err)
	}
	return &testCluster{
		Cluster:    c,
		client:     client,
		kubectlBin: c.Kubectl,
		kubeconfig: c.Kubeconfig,
	}
}

// nodes returns every node of the cluster, node-1 (the real one) first.
func (c *testCluster) nodes(t *testing.T) []clusterNode {
	t.Helper()
	return slices.Clone(c.Nodes)
}

// ext returns the external host on the given VLAN of the fabric.
func (c *testCluster) ext(t *testing.T, vlan int) teststack.EnvExternalHost {
	t.Helper()
	h, ok := c.ExternalHost(vlan)
	if !ok {
		t.Fatalf("the local cluster has no external host on VLAN %d", vlan)
	}
	return h
}

// node returns the node with the given index (1 is the real node), skipping the test when the
// cluster has fewer nodes.
func (c *testCluster) node(t *testing.T, index int) clusterNode {
	t.Helper()
	nodes := c.nodes(t)
	if index > len(nodes) {
		t.Skipf("needs at least %d nodes, the local cluster has %d (hack/local-cluster.sh up --nodes N)", index, len(nodes))
	}
	return nodes[index-1]
}

// kubectl runs kubectl against the cluster and returns its standard output; it fails the test on error.
func (c *testCluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.tryKubectl(args...)
	if err != nil {
		t.Fatalf("%v", err)
	}
	return out
}

// tryKubectl runs kubectl against the cluster and returns its standard output.
func (c *testCluster) tryKubectl(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.kubectlBin, append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, stderr.String())
	}
	return string(out), nil
}

// uniqueName returns prefix plus a random suffix of 6 hex digits; names of netns, links, bridges and
// namespaces are shared by every test on the machine.
func uniqueName(prefix string) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("random name: %v", err))
	}
	return prefix + hex.EncodeToString(b)
}

// createNamespace creates a namespace with a unique name and a default ServiceAccount (no controller
// manager runs to make one) that asks for no token volume. When the test ends it deletes the Pods in
// it, waiting for the kubelet to tear them down, then the namespace itself.
func (c *testCluster) createNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	name := uniqueName(prefix)
	if _, err := c.client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create namespace %s: %v", name, err)
	}
	t.Cleanup(func() { c.deleteNamespace(t, name) })
	if _, err := c.client.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta:                   metav1.ObjectMeta{Name: "default"},
		AutomountServiceAccountToken: new(false),
	}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create service account default in %s: %v", name, err)
	}
	return name
}

// deleteNamespace deletes a namespace's Pods (gracefully, force after podDeleteTimeout), then the
// namespace, finalizing it by hand because no namespace controller runs.
func (c *testCluster) deleteNamespace(t *testing.T, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podDeleteTimeout+apiCallTimeout)
	defer cancel()
	pods, err := c.client.CoreV1().Pods(name).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Errorf("list pods in %s: %v", name, err)
		return
	}
	for _, pod := range pods.Items {
		if err := c.deletePod(ctx, name, pod.Name); err != nil {
			t.Errorf("delete pod %s/%s: %v", name, pod.Name, err)
		}
	}
	if err := c.client.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("delete namespace %s: %v", name, err)
		return
	}
	ns, err := c.client.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return
	}
	if err != nil {
		t.Errorf("get namespace %s: %v", name, err)
		return
	}
	ns.Spec.Finalizers = nil
	if _, err := c.client.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("finalize namespace %s: %v", name, err)
	}
}

// testPod returns a Pod running the test image (busybox) on the given node: it prints marker, then
// sleeps until it is told to stop.
func (c *testCluster) testPod(t *testing.T, namespace, name, nodeName, marker string) *corev1.Pod {
	t.Helper()
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                      nodeName,
			AutomountServiceAccountToken:  new(false),
			TerminationGracePeriodSeconds: new(int64(5)),
			Containers: []corev1.Container{{
				Name:            "box",
				Image:           c.TestImage,
				ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c",
					"trap 'exit 0' TERM; echo " + marker + "; while true; do sleep 1; done"},
			}},
		},
	}
}

// createPod creates a Pod and waits until it runs with all containers ready.
func (c *testCluster) createPod(t *testing.T, pod *corev1.Pod) *corev1.Pod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), podStartTimeout)
	defer cancel()
	if _, err := c.client.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	var last *corev1.Pod
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		p, err := c.client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return false, nil //nolint:nilerr // transient: keep polling until the deadline
		}
		last = p
		return p.Status.Phase == corev1.PodRunning && podReady(p), nil
	})
	if err != nil {
		t.Fatalf("pod %s/%s not running after %v: %v; last status: %s", pod.Namespace, pod.Name,
			podStartTimeout, err, describePodStatus(last))
	}
	return last
}

func podReady(p *corev1.Pod) bool {
	for _, cond := range p.Status.Conditions {
		if cond.Type == corev1.PodReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func describePodStatus(p *corev1.Pod) string {
	if p == nil {
		return "never seen"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "phase=%s", p.Status.Phase)
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil {
			fmt.Fprintf(&b, " %s waiting: %s %s", cs.Name, w.Reason, w.Message)
		}
	}
	for _, cond := range p.Status.Conditions {
		if cond.Status != corev1.ConditionTrue {
			fmt.Fprintf(&b, " %s=%s(%s %s)", cond.Type, cond.Status, cond.Reason, cond.Message)
		}
	}
	return b.String()
}

// deletePod deletes a Pod gracefully and waits until it is gone, which on the real node means the
// kubelet has stopped it and run CNI DEL. A Pod on a simulated node has no kubelet to confirm the
// deletion, so after podDeleteTimeout (or at once for those) it is deleted with grace period 0.
func (c *testCluster) deletePod(ctx context.Context, namespace, name string) error {
	pods := c.client.CoreV1().Pods(namespace)
	pod, err := pods.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get: %w", err)
	}
	var opts metav1.DeleteOptions
	if !c.hasKubelet(pod.Spec.NodeName) {
		opts.GracePeriodSeconds = new(int64(0))
	}
	if err := pods.Delete(ctx, name, opts); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete: %w", err)
	}
	gone := func(ctx context.Context) (bool, error) {
		_, err := pods.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	}
	waitCtx, cancel := context.WithTimeout(ctx, podDeleteTimeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(waitCtx, 200*time.Millisecond, true, gone); err == nil {
		return nil
	}
	if err := pods.Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("force delete: %w", err)
	}
	return errors.New("not gone after " + podDeleteTimeout.String() + ": force-deleted")
}

// hasKubelet reports whether a real kubelet runs for the node.
func (c *testCluster) hasKubelet(nodeName string) bool {
	for _, n := range c.Nodes {
		if n.Name == nodeName {
			return n.Real
		}
	}
	return false
}

// eventually retries check until it succeeds or timeout passes, and returns its last error.
func eventually(timeout time.Duration, check func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := check()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// nodeKubectl returns the argv of a kubectl command that acts as the node itself (its kubeconfig),
// for running inside the node's network namespace.
func (c *testCluster) nodeKubectl(node clusterNode, args ...string) []string {
	return append([]string{c.kubectlBin, "--kubeconfig", node.Kubeconfig, "--request-timeout=20s"}, args...)
}
