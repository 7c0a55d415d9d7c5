package podvlanctl

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadfake "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned/fake"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	kubefake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	ippoolfake "github.com/podvlan/podvlan/pkg/client/clientset/versioned/fake"
)

// fakeClient is a Client over fake clientsets holding a small installation: node-1 with an agent,
// demo/multi attached to demo/vlan100, and an allocation of a Pod that is gone.
func fakeClient(t *testing.T, extra ...runtime.Object) (*Client, *kubefake.Clientset) {
	t.Helper()
	multi := pod("demo", "multi", "node-1", map[string]string{
		nadv1.NetworkAttachmentAnnot: "vlan100",
		nadv1.NetworkStatusAnnot:     `[{"name":"demo/vlan100","interface":"eth1","ips":["198.18.100.2"],"mac":"02:00:00:00:01:01"}]`,
	})
	agent := agentPod("node-1", true, 0)
	caPEM, _ := servingBundle(t, t0)
	objects := append([]runtime.Object{multi, &agent, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1", Labels: map[string]string{"kubernetes.io/os": "linux"}}},
		configMap(agentConf, controllerConfOn), daemonSet(), deployment(1), webhook(caPEM),
		ptr(event("demo", "Pod", "multi", AgentComponent, "Normal", "NetworkAttached", "attached eth1 198.18.100.2/24 (demo/vlan100, VLAN 100)", t0)),
		ptr(event("default", "Node", "node-1", AgentComponent, "Normal", "SecondaryBridgeReady", "bridge br-secondary ready with uplinks [eth1 eth2 eth3]", t0)),
	}, extra...)
	kube := kubefake.NewSimpleClientset(objects...)
	kube.Discovery().(*fakediscovery.FakeDiscovery).Resources = []*metav1.APIResourceList{
		{GroupVersion: "crd.antrea.io/v1beta1", APIResources: []metav1.APIResource{{Name: "ippools"}}},
		{GroupVersion: "k8s.cni.cncf.io/v1", APIResources: []metav1.APIResource{{Name: "network-attachment-definitions"}}},
	}
	pools := ippoolfake.NewSimpleClientset(pool("vlan100-ipv4", "198.18.100.1", 100, 61,
		held("198.18.100.2", "demo", "multi", string(podUID), containerID1, "eth1"),
		held("198.18.100.3", "demo", "gone", "uid-g", "c9", "eth1")))
	// Created through the client: the fake's tracker would file an object given to
	// NewSimpleClientset under a guessed resource name that differs from the client's.
	nads := nadfake.NewSimpleClientset()
	if _, err := nads.K8sCniCncfIoV1().NetworkAttachmentDefinitions("demo").Create(context.Background(), nadVLAN100, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c := &Client{Kube: kube, Pools: pools, NADs: nads,
		FetchMetrics: func(context.Context, *corev1.Pod, string) (string, error) { return nodeMetrics, nil },
		ProbeTLS: func(context.Context, string) ([]*x509.Certificate, error) {
			return nil, errors.New("no route to the controller from this machine")
		},
		Now: func() time.Time { return t0 },
	}
	return c, kube
}

func TestClientPod(t *testing.T) {
	c, _ := fakeClient(t)
	r, err := c.Pod(context.Background(), "demo", "multi")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Interfaces) != 1 {
		t.Fatalf("interfaces %+v", r.Interfaces)
	}
	i := r.Interfaces[0]
	if i.Network != "demo/vlan100" || i.VLAN == nil || *i.VLAN != 100 || i.OVSPort != veth.HostName(containerID1, "eth1") ||
		!i.Attached || i.LastEvent == nil || i.LastEvent.Reason != "NetworkAttached" {
		t.Errorf("interface %+v", i)
	}
	if _, err := c.Pod(context.Background(), "demo", "absent"); !apierrors.IsNotFound(err) || !strings.Contains(err.Error(), "demo/absent") {
		t.Errorf("absent Pod: %v, want a not-found error naming it", err)
	}
}

func TestClientPools(t *testing.T) {
	c, _ := fakeClient(t)
	r, err := c.Pool(context.Background(), "vlan100-ipv4")
	if err != nil {
		t.Fatal(err)
	}
	if r.Used != 2 || r.Leaks != 1 || r.Holders[1].Leak == "" || len(r.PerNode) != 2 {
		t.Errorf("report %+v, want 2 used, the gone Pod's address a leak", r)
	}
	all, err := c.AllPools(context.Background())
	if err != nil || len(all) != 1 || all[0].Name != "vlan100-ipv4" {
		t.Errorf("AllPools = %+v, %v", all, err)
	}
}

func TestClientPoolsReadHoldersOfBlocks(t *testing.T) {
	c, _ := fakeClient(t)
	blk := &v1beta1.IPPoolBlock{ObjectMeta: metav1.ObjectMeta{Name: "vlan100-ipv4.198-18-100-16-28"},
		Spec:   v1beta1.IPPoolBlockSpec{Pool: "vlan100-ipv4", CIDR: "198.18.100.16/28", NodeName: "node-7"},
		Status: v1beta1.IPPoolBlockStatus{IPAddresses: []v1beta1.IPAddressState{held("198.18.100.17", "demo", "gone2", "uid-g2", "c10", "eth1")}, Used: 1}}
	other := &v1beta1.IPPoolBlock{ObjectMeta: metav1.ObjectMeta{Name: "other.198-18-100-32-28"},
		Spec:   v1beta1.IPPoolBlockSpec{Pool: "other", CIDR: "198.18.100.32/28", NodeName: "node-7"},
		Status: v1beta1.IPPoolBlockStatus{IPAddresses: []v1beta1.IPAddressState{held("198.18.100.33", "demo", "x", "uid-x", "c11", "eth1")}, Used: 1}}
	for _, b := range []*v1beta1.IPPoolBlock{blk, other} {
		if _, err := c.Pools.CrdV1beta1().IPPoolBlocks().Create(context.Background(), b, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	r, err := c.Pool(context.Background(), "vlan100-ipv4")
	if err != nil {
		t.Fatal(err)
	}
	if r.Used != 3 || len(r.Holders) != 3 || r.Holders[2].IP != "198.18.100.17" || r.Holders[2].Node != "node-7" {
		t.Fatalf("report %+v, want the status entries and the block's holder on node-7", r)
	}
	if r.Leaks != 2 {
		t.Errorf("report %+v, want the block's holder of a gone Pod counted as a leak", r)
	}
}

func TestClientPoolsWithoutPodAccess(t *testing.T) {
	c, kube := fakeClient(t)
	kube.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("no"))
	})
	r, err := c.Pool(context.Background(), "vlan100-ipv4")
	if err != nil {
		t.Fatal(err)
	}
	if !r.LeaksUnknown || r.Leaks != 0 {
		t.Errorf("report %+v, want leaks unknown", r)
	}
}

func TestClientNode(t *testing.T) {
	c, _ := fakeClient(t)
	r, err := c.Node(context.Background(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if r.Bridge != "br-secondary" || r.BridgeState != StateReady || !r.Agent.Ready || r.Chain != StatePresent || len(r.Ports) != 1 || len(r.Uplinks) != 3 {
		t.Errorf("report %+v", r)
	}
	if r.Uplinks[1].State != StateMissing || r.Uplinks[2].State != StateAttached {
		t.Errorf("uplinks %+v: eth2 missing by its gauge, eth3 attached by the Event", r.Uplinks)
	}
}

func TestClientNodeLoopbackMetrics(t *testing.T) {
	c, kube := fakeClient(t)
	ctx := context.Background()
	agent, err := kube.CoreV1().Pods(SystemNamespace).Get(ctx, "antrea-agent-x", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	agent.Spec.Containers[0].Args = nil // the agent's default, 127.0.0.1:10351
	if _, err := kube.CoreV1().Pods(SystemNamespace).Update(ctx, agent, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := c.Node(ctx, "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(r.Limits, "\n"), "127.0.0.1:10351 only") || r.Chain != StateUnknown || r.BridgeState != StateReady {
		t.Errorf("report %+v, want the loopback limit said and states from Events", r)
	}
}

func TestClientDoctor(t *testing.T) {
	c, _ := fakeClient(t)
	checks := c.Doctor(context.Background())
	for _, ch := range checks {
		want := CheckOK
		if ch.Name == "webhook serving certificate" {
			want = CheckSkip // the probe cannot reach the controller
		}
		if ch.Status != want {
			t.Errorf("check %q: %s %q, want %s", ch.Name, ch.Status, ch.Detail, want)
		}
	}
	if !Healthy(checks) {
		t.Error("not healthy")
	}
}

func TestClientDoctorForbidden(t *testing.T) {
	c, kube := fakeClient(t)
	kube.PrependReactor("get", "configmaps", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "configmaps"}, ConfigMapName, errors.New("RBAC"))
	})
	for _, ch := range c.Doctor(context.Background()) {
		if ch.Name == "ConfigMap kube-system/antrea-config" {
			if ch.Status != CheckSkip || !strings.Contains(ch.Fix, "grant get on configmaps") {
				t.Errorf("check %+v, want skipped saying which permission", ch)
			}
			return
		}
	}
	t.Error("no ConfigMap check")
}

func TestClientNodeWithoutPodAccess(t *testing.T) {
	c, kube := fakeClient(t)
	kube.PrependReactor("list", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetNamespace() == SystemNamespace {
			return false, nil, nil
		}
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "", errors.New("RBAC"))
	})
	r, err := c.Node(context.Background(), "node-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Ports) != 0 || !strings.Contains(strings.Join(r.Limits, "\n"), "needs list on pods in every namespace") || !r.Agent.Ready {
		t.Errorf("report %+v, want no ports, the missing permission named, the agent still seen", r)
	}
}
