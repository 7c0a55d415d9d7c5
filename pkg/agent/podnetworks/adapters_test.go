package podnetworks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/strategicpatch"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/cni/server"
	"github.com/podvlan/podvlan/pkg/ipam"
	"github.com/podvlan/podvlan/pkg/ovs"
)

type fakeLookup struct {
	nads  map[string]string // "ns/name" -> spec.config
	pools map[string]v1beta1.IPPoolSpec
}

func (f fakeLookup) NAD(_ context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	cfg, ok := f.nads[namespace+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions"}, name)
	}
	return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: cfg}}, nil
}

func (f fakeLookup) IPPool(_ context.Context, name string) (*v1beta1.IPPool, error) {
	spec, ok := f.pools[name]
	if !ok {
		return nil, apierrors.NewNotFound(v1beta1.Resource("ippools"), name)
	}
	return &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, nil
}

func TestPlanResolver(t *testing.T) {
	lookup := fakeLookup{
		nads: map[string]string{
			"ns/vlan100":   `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "ipam": {"type": "antrea", "ippools": ["vlan100-ipv4"]}}`,
			"ns/nopool":    `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "ipam": {"type": "antrea", "ippools": ["missing"]}}`,
			"ns/bad":       `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vxlan"}`,
			"ns/macvlan":   `{"cniVersion": "1.0.0", "type": "macvlan"}`,
			"ns/untagged0": `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "vlan": 7}`,
		},
		pools: map[string]v1beta1.IPPoolSpec{"vlan100-ipv4": {IPRanges: []v1beta1.IPRange{{CIDR: "198.18.100.0/24"}},
			SubnetInfo: v1beta1.SubnetInfo{Gateway: "198.18.100.1", PrefixLength: 24, VLAN: 100}}},
	}
	tests := []struct {
		name        string
		annotation  string
		ipam        bool
		wantReason  string
		wantForeign bool
		wantVLAN    int
	}{
		{name: "a network of ours is planned with its pool's VLAN", annotation: "vlan100@eth5", ipam: true, wantVLAN: 100},
		{name: "a missing NetworkAttachmentDefinition", annotation: "vlan300", ipam: true, wantReason: ReasonNADNotFound},
		{name: "a missing IPPool", annotation: "nopool", ipam: true, wantReason: ReasonIPPoolNotFound},
		{name: "an invalid network", annotation: "bad", ipam: true, wantReason: ReasonInvalidNetwork},
		{name: "another plugin's network", annotation: "macvlan", ipam: true, wantForeign: true},
		{name: "addresses without AntreaIPAM", annotation: "vlan100", wantReason: ReasonGateDisabled},
		{name: "a network without addresses needs no AntreaIPAM", annotation: "untagged0", wantVLAN: 7},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			els, err := selection.Parse("ns", tt.annotation)
			if err != nil {
				t.Fatal(err)
			}
			r := &PlanResolver{Lookup: lookup, IPAM: tt.ipam}
			n, foreign, err := r.Resolve(context.Background(), els[0])
			if got := ReasonOf(err, ""); got != tt.wantReason {
				t.Fatalf("Resolve() error = %v (reason %q), want reason %q", err, got, tt.wantReason)
			}
			if foreign != tt.wantForeign {
				t.Errorf("foreign = %v, want %v", foreign, tt.wantForeign)
			}
			if tt.wantReason != "" || tt.wantForeign {
				if n != nil {
					t.Errorf("network = %+v, want none", n)
				}
				return
			}
			if n.VLAN != tt.wantVLAN || n.IfName != els[0].Interface || n.Network != els[0].NetworkKey() {
				t.Errorf("network = %+v", n)
			}
		})
	}
}

func TestReasonOf(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{WithReason(ReasonNADNotFound, errors.New("x")), ReasonNADNotFound},
		{fmt.Errorf("attach: %w", &ipam.PoolExhaustedError{Pool: "p"}), ReasonIPPoolExhausted},
		{errors.Join(errors.New("veth"), &ipam.PoolNotFoundError{Pool: "p"}), ReasonIPPoolNotFound},
		{fmt.Errorf("create port: %w", ovs.ErrNotConnected), ReasonAgentUnavailable},
		{errors.New("something else"), "fallback"},
	}
	for _, tt := range tests {
		if got := ReasonOf(tt.err, "fallback"); got != tt.want {
			t.Errorf("ReasonOf(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// The patch must set our condition and leave the kubelet's alone, which a strategic merge on
// Pod conditions (merged by type) does.
func TestConditionPatchKeepsOtherConditions(t *testing.T) {
	pod := corev1.Pod{ObjectMeta: metav1.ObjectMeta{UID: "u1"}, Status: corev1.PodStatus{Conditions: []corev1.PodCondition{
		{Type: corev1.PodReady, Status: corev1.ConditionFalse},
		{Type: ConditionType, Status: corev1.ConditionFalse, Reason: ReasonNADNotFound},
	}}}
	original, err := json.Marshal(pod)
	if err != nil {
		t.Fatal(err)
	}
	patch, err := conditionPatch("u1", corev1.PodCondition{Type: ConditionType, Status: corev1.ConditionTrue, Reason: ReasonAttached})
	if err != nil {
		t.Fatal(err)
	}
	merged, err := strategicpatch.StrategicMergePatch(original, patch, corev1.Pod{})
	if err != nil {
		t.Fatal(err)
	}
	var got corev1.Pod
	if err := json.Unmarshal(merged, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Status.Conditions) != 2 || got.Status.Conditions[0].Type != corev1.PodReady ||
		got.Status.Conditions[1].Status != corev1.ConditionTrue || got.Status.Conditions[1].Reason != ReasonAttached {
		t.Errorf("conditions after the patch = %+v", got.Status.Conditions)
	}
}

func TestConditionMessages(t *testing.T) {
	eth1 := Identity{"ns/vlan100", "eth1"}
	tests := []struct {
		name    string
		o       Outcome
		status  corev1.ConditionStatus
		reason  string
		message string
	}{
		{"attached", Outcome{Attached: []Identity{eth1}}, corev1.ConditionTrue, ReasonAttached, "attached eth1 (ns/vlan100)"},
		{"nothing asked", Outcome{}, corev1.ConditionTrue, ReasonNoNetworks, "the Pod asks for no secondary network of this agent"},
		{"refused", Outcome{Attached: []Identity{eth1}, Refused: &Change{Remove: []Identity{eth1}}}, corev1.ConditionTrue, ReasonChangeNotApplied,
			"attached eth1 (ns/vlan100); the change of the annotation (remove eth1 (ns/vlan100)) is not applied: feature gate SecondaryNetworkHotplug is disabled"},
		{"failed", Outcome{Attached: []Identity{eth1}, Failed: errors.New("IPPool \"p\" is exhausted"), FailedReason: ReasonIPPoolExhausted},
			corev1.ConditionFalse, ReasonIPPoolExhausted, "IPPool \"p\" is exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.o.Condition()
			if c.Type != ConditionType || c.Status != tt.status || c.Reason != tt.reason || c.Message != tt.message {
				t.Errorf("Condition() = %+v", c)
			}
		})
	}
}

type portList []ovs.PodPort

func (p portList) ListPodPorts(context.Context, string) ([]ovs.PodPort, error) { return p, nil }

func TestPortAttachmentsAreTheContainersPorts(t *testing.T) {
	ports := portList{
		{Name: "a", Owner: ovs.PortOwner{ContainerID: "c1", IfName: "eth1", Network: "ns/vlan100", Addresses: []string{"198.18.100.2/24"}}, NetworkStatus: "{}"},
		{Name: "b", Owner: ovs.PortOwner{ContainerID: "c0", IfName: "eth1", Network: "ns/vlan100"}},
		{Name: "c", Owner: ovs.PortOwner{ContainerID: "c1", IfName: "net2", Network: "networks/vlan200"}},
	}
	got, err := (&PortAttachments{Ports: ports, Bridge: "br"}).Of(context.Background(), "c1")
	if err != nil {
		t.Fatal(err)
	}
	want := []Current{
		{Identity: Identity{"ns/vlan100", "eth1"}, Port: "a", Addresses: []string{"198.18.100.2/24"}, Status: "{}"},
		{Identity: Identity{"networks/vlan200", "net2"}, Port: "c"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Of() = %+v, want %+v", got, want)
	}
}

type blockingHandler struct {
	server.Handler
	entered, release chan struct{}
}

func (h *blockingHandler) Add(context.Context, *server.Request) (types.Result, error) {
	close(h.entered)
	<-h.release
	return nil, nil
}

func TestADDsAreBusyWhileServed(t *testing.T) {
	adds := NewADDs()
	h := &blockingHandler{entered: make(chan struct{}), release: make(chan struct{})}
	wrapped := adds.Wrap(h)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = wrapped.Add(context.Background(), &server.Request{ContainerID: "c1"})
	}()
	<-h.entered
	if !adds.Busy("c1") || adds.Busy("c2") {
		t.Errorf("during the ADD: Busy(c1) = %v, Busy(c2) = %v", adds.Busy("c1"), adds.Busy("c2"))
	}
	close(h.release)
	<-done
	if adds.Busy("c1") {
		t.Error("Busy(c1) after the ADD returned")
	}
	if strings.Contains(fmt.Sprint(adds.inFlight), "c1") {
		t.Errorf("the tracker keeps finished ADDs: %v", adds.inFlight)
	}
}

type failingHandler struct {
	server.Handler
	addErr error
	dels   int
}

func (h *failingHandler) Add(context.Context, *server.Request) (types.Result, error) {
	return nil, h.addErr
}

func (h *failingHandler) Del(context.Context, *server.Request) error {
	h.dels++
	return nil
}

// A sandbox whose ADD failed never runs: the controller must not attach it before its DEL
// (the agent's own rollback already removed what the ADD made).
func TestADDsRememberAFailedADDUntilItsDEL(t *testing.T) {
	adds := NewADDs()
	now := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	adds.now = func() time.Time { return now }
	h := &failingHandler{addErr: errors.New("default-route gateway is not in a subnet of eth1")}
	wrapped := adds.Wrap(h)
	req := &server.Request{ContainerID: "c1"}

	if _, err := wrapped.Add(context.Background(), req); err == nil {
		t.Fatal("the wrapped ADD hid the handler's error")
	}
	if !adds.Busy("c1") {
		t.Error("Busy(c1) = false after its ADD failed, want true until its DEL")
	}
	if err := wrapped.Del(context.Background(), req); err != nil || h.dels != 1 {
		t.Fatalf("DEL = %v, reached the handler %d times, want nil and once", err, h.dels)
	}
	if adds.Busy("c1") {
		t.Error("Busy(c1) = true after its DEL")
	}

	// A retried ADD of the same sandbox that succeeds clears the failure.
	_, _ = wrapped.Add(context.Background(), req)
	h.addErr = nil
	if _, err := wrapped.Add(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if adds.Busy("c1") {
		t.Error("Busy(c1) = true after a successful ADD")
	}

	// Without a DEL, a failure is forgotten after FailedMemory, and the map does not grow.
	h.addErr = errors.New("IPPool exhausted")
	_, _ = wrapped.Add(context.Background(), &server.Request{ContainerID: "c2"})
	now = now.Add(FailedMemory)
	if adds.Busy("c2") {
		t.Error("Busy(c2) = true after FailedMemory")
	}
	_, _ = wrapped.Add(context.Background(), &server.Request{ContainerID: "c3"})
	if _, kept := adds.failed["c2"]; kept || len(adds.failed) != 1 {
		t.Errorf("failed ADDs remembered: %v, want only c3", adds.failed)
	}
}
