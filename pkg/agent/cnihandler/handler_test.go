package cnihandler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podvlan/podvlan/pkg/agent/engine/enginetest"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/cni/server"
	"github.com/podvlan/podvlan/pkg/config"
)

// The three ways in, as the runtime (or Multus) writes their stdin.
const (
	chainedConfig  = `{"cniVersion":"1.0.0","name":"k8s-pod-network","type":"antrea","prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}]}}`
	delegateConfig = `{"cniVersion":"1.0.0","name":"vlan100","type":"antrea","networkType":"vlan","ipam":{"type":"antrea","ippools":["pool100"]}}`
	ipamOnlyConfig = `{"cniVersion":"1.0.0","name":"mv","type":"macvlan","master":"eth0","ipam":{"type":"antrea","ippools":["pool100"]}}`
)

type way struct {
	name, config, ifName string
	// podIf is the interface the Pod gets: the annotation's on the chained way in.
	podIf string
	// attaches: the way in makes a veth and a port (not IPAM-only).
	attaches bool
}

var ways = []way{
	{name: "chained", config: chainedConfig, ifName: "eth0", podIf: "eth1", attaches: true},
	{name: "delegate", config: delegateConfig, ifName: "net1", podIf: "net1", attaches: true},
	{name: "IPAM-only", config: ipamOnlyConfig, ifName: "eth0", podIf: "eth0"},
}

type fakePods struct{ pods map[string]*corev1.Pod }

func (f *fakePods) Get(_ context.Context, namespace, name, uid string) (*corev1.Pod, error) {
	p, ok := f.pods[namespace+"/"+name]
	if !ok || (uid != "" && string(p.UID) != uid) {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	return p, nil
}

type fakeLookup struct {
	nads  map[string]string
	pools map[string]v1beta1.IPPoolSpec
}

func (f *fakeLookup) NAD(_ context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	cfg, ok := f.nads[namespace+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions"}, name)
	}
	return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: cfg}}, nil
}

func (f *fakeLookup) IPPool(_ context.Context, name string) (*v1beta1.IPPool, error) {
	spec, ok := f.pools[name]
	if !ok {
		return nil, apierrors.NewNotFound(v1beta1.Resource("ippools"), name)
	}
	return &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, nil
}

// fakeReporter keeps the Events a user would see.
type fakeReporter struct {
	mu       sync.Mutex
	events   []string
	statuses int
}

func (r *fakeReporter) add(reason string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, reason+": "+err.Error())
}
func (r *fakeReporter) AttachFailed(_ podstatus.PodRef, err error) { r.add("AttachFailed", err) }
func (r *fakeReporter) Attached(_ podstatus.PodRef, msg string)    { r.add("Attached", errors.New(msg)) }
func (r *fakeReporter) DetachFailed(_ podstatus.PodRef, err error) { r.add("DetachFailed", err) }
func (r *fakeReporter) QueueNetworkStatus(podstatus.PodRef, []nadv1.NetworkStatus) {
	r.mu.Lock()
	r.statuses++
	r.mu.Unlock()
}

// reasons lists the Events' reasons.
func (r *fakeReporter) reasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		reason, _, _ := strings.Cut(e, ":")
		out = append(out, reason)
	}
	return out
}

type stage struct {
	rig      *enginetest.Rig
	lookup   *fakeLookup
	reporter *fakeReporter
	handler  *Handler
	ready    error
}

func newStage(t *testing.T) *stage {
	t.Helper()
	gates, err := config.NewFeatureGates(map[string]bool{string(config.SecondaryNetwork): true, string(config.AntreaIPAM): true})
	if err != nil {
		t.Fatal(err)
	}
	s := &stage{rig: enginetest.NewRig(), reporter: &fakeReporter{}, lookup: &fakeLookup{
		nads: map[string]string{"ns/vlan100": `{"cniVersion":"0.3.0","type":"antrea","networkType":"vlan","ipam":{"type":"antrea","ippools":["pool100"]}}`},
		pools: map[string]v1beta1.IPPoolSpec{"pool100": {IPRanges: []v1beta1.IPRange{{CIDR: "10.1.0.0/24"}},
			SubnetInfo: v1beta1.SubnetInfo{Gateway: "10.1.0.1", PrefixLength: 24, VLAN: 100}}},
	}}
	pods := &fakePods{pods: map[string]*corev1.Pod{"ns/pod": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "pod", UID: "uid-1",
		Annotations: map[string]string{selection.AnnotationKey: "vlan100"}}}}}
	s.handler = New(Options{Gates: gates, Addrs: s.rig.Addresses, Pods: pods, Lookup: s.lookup, Reporter: s.reporter,
		Ready: func() error { return s.ready }})
	s.handler.SetEngine(s.rig.Engine)
	return s
}

func cniRequest(command string, w way) *server.Request {
	return &server.Request{Command: command, ContainerID: "c1", Netns: "/var/run/netns/pod", IfName: w.ifName,
		Args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=pod;K8S_POD_UID=uid-1", Config: []byte(w.config)}
}

// codeOf is the CNI error code the server answers an error with (see package server).
func codeOf(command string, err error) uint {
	var typed *types.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &typed):
		return typed.Code
	case command == server.CommandStatus:
		return types.ErrPluginNotAvailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return types.ErrTryAgainLater
	}
	return types.ErrInternal
}

func TestAdd(t *testing.T) {
	failures := []struct {
		name string
		// inject sets the failure up; nil: none.
		inject   func(s *stage)
		cancel   bool
		attaches bool // only meaningful where a veth and a port are made
		wantCode uint
	}{
		{name: "succeeds"},
		{name: "allocation fails", inject: func(s *stage) { s.rig.Addresses.Err = enginetest.ErrInjected }, wantCode: types.ErrInternal},
		{name: "veth fails", attaches: true, inject: func(s *stage) { s.rig.Kernel.PrepareErr = enginetest.ErrInjected }, wantCode: types.ErrInternal},
		{name: "port fails", attaches: true, inject: func(s *stage) { s.rig.Ports.CreateErr = enginetest.ErrInjected }, wantCode: types.ErrInternal},
		{name: "VLAN changed under the plan", attaches: true, inject: func(s *stage) { s.rig.Addresses.VLAN = 200 }, wantCode: types.ErrInternal},
		{name: "context cancelled", cancel: true, wantCode: types.ErrTryAgainLater},
	}
	for _, w := range ways {
		for _, f := range failures {
			if f.attaches && !w.attaches {
				continue
			}
			t.Run(w.name+"/"+f.name, func(t *testing.T) {
				s := newStage(t)
				if f.inject != nil {
					f.inject(s)
				}
				ctx := t.Context()
				if f.cancel {
					var cancel context.CancelFunc
					ctx, cancel = context.WithCancel(ctx)
					cancel()
				}
				res, err := s.handler.Add(ctx, cniRequest(server.CommandAdd, w))
				if got := codeOf(server.CommandAdd, err); got != f.wantCode {
					t.Fatalf("ADD = %v, %v; code %d, want %d", res, err, got, f.wantCode)
				}
				left := s.rig.World.Leftovers()
				if f.wantCode != 0 {
					// The user sees the error on the Pod, and nothing stays behind.
					if got := s.reporter.reasons(); !slices.Equal(got, []string{"AttachFailed"}) {
						t.Errorf("Events %q, want one AttachFailed", s.reporter.events)
					}
					if left != "" {
						t.Errorf("left behind after a failed ADD: %s", left)
					}
					return
				}
				if !strings.Contains(left, "allocation c1/"+w.podIf) || w.attaches != strings.Contains(left, "port ") {
					t.Errorf("after ADD the Node holds %q", left)
				}
				switch w.name {
				case "chained":
					if s.reporter.statuses != 1 || !slices.Equal(s.reporter.reasons(), []string{"Attached"}) {
						t.Errorf("Events %q, statuses %d; want Attached and one network-status", s.reporter.events, s.reporter.statuses)
					}
				case "delegate", "IPAM-only":
					r, err := current.GetResult(res)
					if err != nil {
						t.Fatal(err)
					}
					if len(r.IPs) != 1 || r.IPs[0].Address.String() != "10.1.0.5/24" || r.IPs[0].Gateway.String() != "10.1.0.1" {
						t.Errorf("result %+v", r)
					}
					if s.reporter.statuses != 0 {
						t.Errorf("%d network-status writes; Multus or the main plugin writes it", s.reporter.statuses)
					}
				}
			})
		}
	}
}

func TestDelCheckAfterAdd(t *testing.T) {
	for _, w := range ways {
		t.Run(w.name+"/CHECK passes, DEL removes everything, DEL again succeeds", func(t *testing.T) {
			s := newStage(t)
			if _, err := s.handler.Add(t.Context(), cniRequest(server.CommandAdd, w)); err != nil {
				t.Fatal(err)
			}
			if err := s.handler.Check(t.Context(), cniRequest(server.CommandCheck, w)); err != nil {
				t.Errorf("CHECK = %v", err)
			}
			for range 2 {
				if err := s.handler.Del(t.Context(), cniRequest(server.CommandDel, w)); err != nil {
					t.Fatalf("DEL = %v", err)
				}
				if left := s.rig.World.Leftovers(); left != "" {
					t.Errorf("left after DEL: %s", left)
				}
			}
			if err := s.handler.Check(t.Context(), cniRequest(server.CommandCheck, w)); codeOf(server.CommandCheck, err) != types.ErrInternal {
				t.Errorf("CHECK after DEL = %v, want code 999", err)
			}
		})
		t.Run(w.name+"/a failing DEL is reported on the Pod", func(t *testing.T) {
			s := newStage(t)
			if _, err := s.handler.Add(t.Context(), cniRequest(server.CommandAdd, w)); err != nil {
				t.Fatal(err)
			}
			s.rig.Addresses.ReleaseErr = enginetest.ErrInjected
			s.rig.Kernel.DeleteErr = enginetest.ErrInjected
			err := s.handler.Del(t.Context(), cniRequest(server.CommandDel, w))
			if codeOf(server.CommandDel, err) != types.ErrInternal {
				t.Fatalf("DEL = %v, want code 999", err)
			}
			if w.attaches && !slices.Contains(s.reporter.reasons(), "DetachFailed") {
				t.Errorf("Events %q, want DetachFailed", s.reporter.events)
			}
		})
	}
}

func TestCheckSeesAChangedVLAN(t *testing.T) {
	s := newStage(t)
	w := ways[0]
	if _, err := s.handler.Add(t.Context(), cniRequest(server.CommandAdd, w)); err != nil {
		t.Fatal(err)
	}
	s.lookup.nads["ns/vlan100"] = `{"cniVersion":"0.3.0","type":"antrea","networkType":"vlan","vlan":300,"ipam":{"type":"antrea","ippools":["pool100"]}}`
	err := s.handler.Check(t.Context(), cniRequest(server.CommandCheck, w))
	if codeOf(server.CommandCheck, err) != types.ErrInternal || !strings.Contains(err.Error(), "want 300") {
		t.Errorf("CHECK = %v, want code 999 naming the VLAN", err)
	}
}

func TestNotConnectedToOVSDBIsTryAgain(t *testing.T) {
	s := newStage(t)
	s.handler = New(Options{Gates: s.handler.gates, Addrs: s.rig.Addresses, Pods: s.handler.pods, Lookup: s.lookup, Reporter: s.reporter})
	for _, w := range ways[:2] {
		_, err := s.handler.Add(t.Context(), cniRequest(server.CommandAdd, w))
		if codeOf(server.CommandAdd, err) != types.ErrTryAgainLater || !strings.Contains(err.Error(), "OVSDB") {
			t.Errorf("%s ADD = %v, want code 11 naming OVSDB", w.name, err)
		}
	}
	if got := s.reporter.reasons(); !slices.Equal(got, []string{"AttachFailed", "AttachFailed"}) {
		t.Errorf("Events %q", s.reporter.events)
	}
}

func TestStatus(t *testing.T) {
	s := newStage(t)
	if err := s.handler.Status(t.Context(), &server.Request{Command: server.CommandStatus}); err != nil {
		t.Errorf("STATUS = %v, want ready", err)
	}
	s.ready = fmt.Errorf("caches not synced")
	err := s.handler.Status(t.Context(), &server.Request{Command: server.CommandStatus})
	if codeOf(server.CommandStatus, err) != types.ErrPluginNotAvailable {
		t.Errorf("STATUS = %v, want code 50", err)
	}
}

func TestGCWithAnIPAMOnlyConfigLeavesChainedAttachmentsIntact(t *testing.T) {
	s := newStage(t)
	for _, w := range ways {
		if _, err := s.handler.Add(t.Context(), cniRequest(server.CommandAdd, w)); err != nil {
			t.Fatalf("%s ADD: %v", w.name, err)
		}
	}
	before := s.rig.World.Leftovers()
	gc := func(config string) error {
		return s.handler.GC(t.Context(), &server.Request{Command: server.CommandGC, Config: []byte(config)})
	}
	// The IPAM-only network's GC with an empty valid list: only its own allocation goes.
	if err := gc(strings.Replace(ipamOnlyConfig, `{"cniVersion"`, `{"cni.dev/valid-attachments":[],"cniVersion"`, 1)); err != nil {
		t.Fatalf("GC = %v", err)
	}
	after := s.rig.World.Leftovers()
	want := strings.Replace(strings.Replace(before, "allocation c1/eth0, ", "", 1), "intent c1/eth0, ", "", 1)
	if !strings.Contains(before, "intent c1/eth0") || after != want {
		t.Errorf("IPAM-only GC: before %q, after %q; want only the allocation and intent of c1/eth0 gone", before, after)
	}
	// Another delegate network's GC (older key) touches nothing of vlan100.
	other := strings.Replace(delegateConfig, `"name":"vlan100"`, `"name":"vlan200"`, 1)
	if err := gc(strings.Replace(other, `{"cniVersion"`, `{"cni.dev/attachments":[],"cniVersion"`, 1)); err != nil {
		t.Fatalf("GC = %v", err)
	}
	if got := s.rig.World.Leftovers(); got != after {
		t.Errorf("GC of network vlan200 changed %q to %q", after, got)
	}
	// The chained GC that lists the sandbox keeps it.
	if err := gc(strings.Replace(chainedConfig, `{"cniVersion"`, `{"cni.dev/valid-attachments":[{"containerID":"c1","ifname":"eth0"}],"cniVersion"`, 1)); err != nil {
		t.Fatalf("GC = %v", err)
	}
	if got := s.rig.World.Leftovers(); got != after {
		t.Errorf("chained GC listing c1 changed %q to %q", after, got)
	}
}

func TestIPAMCommandsWaitForTheIPPoolCache(t *testing.T) {
	s := newStage(t)
	synced := false
	s.handler.synced = func() bool { return synced }
	w := ways[2]
	for _, command := range []string{server.CommandAdd, server.CommandDel, server.CommandCheck} {
		var err error
		switch command {
		case server.CommandAdd:
			_, err = s.handler.Add(t.Context(), cniRequest(command, w))
		case server.CommandDel:
			err = s.handler.Del(t.Context(), cniRequest(command, w))
		default:
			err = s.handler.Check(t.Context(), cniRequest(command, w))
		}
		if codeOf(command, err) != types.ErrTryAgainLater {
			t.Errorf("IPAM-only %s before the IPPool cache synced = %v, want code 11", command, err)
		}
	}
	if left := s.rig.World.Leftovers(); left != "" {
		t.Errorf("left %s", left)
	}
	synced = true
	if _, err := s.handler.Add(t.Context(), cniRequest(server.CommandAdd, w)); err != nil {
		t.Errorf("ADD once synced = %v", err)
	}
}

// Bug: the GC configuration was decoded into a map, stripped of its attachment keys and
// re-encoded before it was parsed, which silently dropped a key given twice that ADD refuses.
// Both are now judged by the same single parse.
func TestGCRefusesAKeyGivenTwiceAsAddDoes(t *testing.T) {
	s := newStage(t)
	twice := strings.Replace(delegateConfig, `{"cniVersion"`, `{"name":"vlan200","cniVersion"`, 1)
	_, err := s.handler.Add(t.Context(), &server.Request{Command: server.CommandAdd, Config: []byte(twice)})
	if codeOf(server.CommandAdd, err) != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), "name: Forbidden: key given twice") {
		t.Fatalf("ADD = %v, want code 7 naming the name given twice", err)
	}
	gc := strings.Replace(twice, `{"name"`, `{"cni.dev/valid-attachments":[],"name"`, 1)
	err = s.handler.GC(t.Context(), &server.Request{Command: server.CommandGC, Config: []byte(gc)})
	if codeOf(server.CommandGC, err) != types.ErrInvalidNetworkConfig || !strings.Contains(err.Error(), "name: Forbidden: key given twice") {
		t.Fatalf("GC = %v, want code 7 naming the name given twice", err)
	}
}
