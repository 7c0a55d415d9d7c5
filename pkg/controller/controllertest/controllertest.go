// Package controllertest holds helpers for the controller's tests on a real kube-apiserver: clients, a
// unique label and names per test, free subnets for IPPools (overlap across pools is denied, and
// tests share the cluster), Namespaces and Pods without a kubelet, and allocations written into a
// pool's status the way an agent writes them.
package controllertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/netip"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/apis/crd/validation"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
)

// LabelKey marks the IPPools of one test; a webhook or collector of that test selects on it.
const LabelKey = "podvlan-controller-test"

// Env is one test's view of the cluster.
type Env struct {
	Rest  *rest.Config
	Kube  kubernetes.Interface
	CRD   versioned.Interface
	RunID string

	mu    sync.Mutex
	count int
}

// Setup connects to the local cluster (skipping the test when there is none) and installs CRDs.
func Setup(t *testing.T) *Env {
	t.Helper()
	cluster := teststack.LocalCluster(t)
	cluster.InstallCRDs(t)
	cfg := cluster.RestConfig(t)
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	crd, err := versioned.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return &Env{Rest: cfg, Kube: kube, CRD: crd, RunID: hex.EncodeToString(b)}
}

// Ctx is a context for one API call.
func Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Name returns a name unique to this test: prefix-<run id>-<n>.
func (e *Env) Name(prefix string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.count++
	return fmt.Sprintf("%s-%s-%d", prefix, e.RunID, e.count)
}

// Labels are the labels of this test's pools.
func (e *Env) Labels() map[string]string { return map[string]string{LabelKey: e.RunID} }

// Selector selects this test's pools.
func (e *Env) Selector() labels.Selector { return labels.SelectorFromSet(e.Labels()) }

// LabelSelector selects this test's pools, for a webhook's objectSelector.
func (e *Env) LabelSelector() *metav1.LabelSelector {
	return &metav1.LabelSelector{MatchLabels: e.Labels()}
}

var (
	handedOutMu sync.Mutex
	handedOut   = map[netip.Prefix]bool{}
)

// FreeSubnet returns a /24 of 198.18.0.0/15 (benchmarking space, never routed) that no IPPool in
// the cluster overlaps and that this process has not handed out before.
func (e *Env) FreeSubnet(t *testing.T) netip.Prefix {
	t.Helper()
	pools, err := e.CRD.CrdV1beta1().IPPools().List(Ctx(t), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list IPPools: %v", err)
	}
	handedOutMu.Lock()
	defer handedOutMu.Unlock()
	for range 1000 {
		n, err := rand.Int(rand.Reader, big.NewInt(512))
		if err != nil {
			t.Fatal(err)
		}
		i := int(n.Int64())
		prefix := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18 + byte(i/256), byte(i % 256), 0}), 24)
		if handedOut[prefix] || overlapsAny(prefix, pools.Items) {
			continue
		}
		handedOut[prefix] = true
		return prefix
	}
	t.Fatal("no free /24 left in 198.18.0.0/15")
	return netip.Prefix{}
}

func overlapsAny(prefix netip.Prefix, pools []v1beta1.IPPool) bool {
	mine := validation.Range{Start: prefix.Addr(), End: lastAddr(prefix)}
	for _, p := range pools {
		for _, r := range p.Spec.IPRanges {
			theirs, err := validation.ParseRange(r)
			if err == nil && mine.Overlaps(theirs) {
				return true
			}
		}
		if s, err := validation.ParseSubnet(p.Spec.SubnetInfo); err == nil && s.Prefix.Overlaps(prefix) {
			return true
		}
	}
	return false
}

// Addr returns the host'th address of a subnet.
func Addr(subnet netip.Prefix, host int) netip.Addr {
	a := subnet.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(host)
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func lastAddr(p netip.Prefix) netip.Addr {
	return Addr(p.Masked(), 1<<(32-p.Bits())-1)
}

// NewPool builds (without creating) a pool of this test: name from prefix, the test's labels,
// gateway .1 of subnet, prefix length 24, and the given ranges.
func (e *Env) NewPool(prefix string, subnet netip.Prefix, vlan int32, ranges ...v1beta1.IPRange) *v1beta1.IPPool {
	pool := &v1beta1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: e.Name(prefix), Labels: e.Labels()},
		Spec: v1beta1.IPPoolSpec{
			IPRanges:   ranges,
			SubnetInfo: v1beta1.SubnetInfo{Gateway: Addr(subnet, 1).String(), PrefixLength: int32(subnet.Bits()), VLAN: vlan},
		},
	}
	return pool
}

// CreatePool creates pool and removes it (status cleared first) when the test ends.
func (e *Env) CreatePool(t *testing.T, pool *v1beta1.IPPool) (*v1beta1.IPPool, error) {
	t.Helper()
	created, err := e.CRD.CrdV1beta1().IPPools().Create(Ctx(t), pool, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	e.CleanupPool(t, created.Name)
	return created, nil
}

// MustCreatePool is CreatePool failing the test on error.
func (e *Env) MustCreatePool(t *testing.T, pool *v1beta1.IPPool) *v1beta1.IPPool {
	t.Helper()
	created, err := e.CreatePool(t, pool)
	if err != nil {
		t.Fatalf("create IPPool %s: %v", pool.Name, err)
	}
	return created
}

// CleanupPool removes the pool when the test ends: status emptied, then deleted.
func (e *Env) CleanupPool(t *testing.T, name string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		pools := e.CRD.CrdV1beta1().IPPools()
		_ = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			p, err := pools.Get(ctx, name, metav1.GetOptions{})
			if err != nil || len(p.Status.IPAddresses) == 0 {
				return nil
			}
			p.Status = v1beta1.IPPoolStatus{}
			_, err = pools.UpdateStatus(ctx, p, metav1.UpdateOptions{})
			return err
		})
		if err := pools.Delete(ctx, name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Logf("cleanup: delete IPPool %s: %v", name, err)
		}
	})
}

// Entry is a status entry held by an interface of pod.
func Entry(ip netip.Addr, pod *corev1.Pod, containerID, ifName string) v1beta1.IPAddressState {
	return v1beta1.IPAddressState{
		IPAddress: ip.String(),
		Phase:     v1beta1.IPAddressPhaseAllocated,
		Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{
			Name: pod.Name, Namespace: pod.Namespace, UID: string(pod.UID), ContainerID: containerID, IFName: ifName,
		}},
	}
}

// Allocate appends entries to the pool's status, as an agent does (optimistic, retried on conflict).
func (e *Env) Allocate(t *testing.T, pool string, entries ...v1beta1.IPAddressState) *v1beta1.IPPool {
	t.Helper()
	pools := e.CRD.CrdV1beta1().IPPools()
	var out *v1beta1.IPPool
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		p, err := pools.Get(Ctx(t), pool, metav1.GetOptions{})
		if err != nil {
			return err
		}
		p.Status.IPAddresses = append(p.Status.IPAddresses, entries...)
		p.Status.Usage.Used = len(p.Status.IPAddresses)
		out, err = pools.UpdateStatus(Ctx(t), p, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		t.Fatalf("allocate in IPPool %s: %v", pool, err)
	}
	return out
}

// Addresses returns the addresses recorded in the pool's status, read from the API server.
func (e *Env) Addresses(t *testing.T, pool string) []string {
	t.Helper()
	p, err := e.CRD.CrdV1beta1().IPPools().Get(Ctx(t), pool, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get IPPool %s: %v", pool, err)
	}
	var out []string
	for _, a := range p.Status.IPAddresses {
		out = append(out, a.IPAddress)
	}
	return out
}

// Namespace creates a Namespace of this test with its default ServiceAccount (no controller-manager
// creates it). It is never deleted: without a namespace controller it would stay Terminating.
func (e *Env) Namespace(t *testing.T) string {
	t.Helper()
	name := e.Name("ctrl")
	ctx := Ctx(t)
	if _, err := e.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create Namespace %s: %v", name, err)
	}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: name}}
	if _, err := e.Kube.CoreV1().ServiceAccounts(name).Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("create ServiceAccount default in %s: %v", name, err)
	}
	return name
}

// CreatePod creates a Pod bound to a Node name (no kubelet runs it) and force-deletes it when the
// test ends.
func (e *Env) CreatePod(t *testing.T, namespace, name string) *corev1.Pod {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: corev1.PodSpec{
			NodeName:                     "node-" + e.RunID,
			AutomountServiceAccountToken: new(false),
			Containers:                   []corev1.Container{{Name: "c", Image: "harness.local/busybox:1"}},
		},
	}
	created, err := e.Kube.CoreV1().Pods(namespace).Create(Ctx(t), pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("create Pod %s/%s: %v", namespace, name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := e.Kube.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0)),
			Preconditions: metav1.NewUIDPreconditions(string(created.UID))})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			t.Logf("cleanup: delete Pod %s/%s: %v", namespace, name, err)
		}
	})
	return created
}

// DeletePod deletes a Pod at once (grace period 0: there is no kubelet to confirm a graceful one)
// and waits until it is gone.
func (e *Env) DeletePod(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	pods := e.Kube.CoreV1().Pods(pod.Namespace)
	err := pods.Delete(Ctx(t), pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("delete Pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
	Eventually(t, 30*time.Second, func() (bool, string) {
		_, err := pods.Get(Ctx(t), pod.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprintf("Pod %s/%s still there (%v)", pod.Namespace, pod.Name, err)
	})
}

// Eventually polls cond until it holds, failing the test with cond's last message at the deadline.
func Eventually(t *testing.T, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, msg := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v: %s", timeout, msg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
