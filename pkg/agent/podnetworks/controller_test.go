package podnetworks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8stypes "k8s.io/apimachinery/pkg/types"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/podvlan/podvlan/pkg/agent/engine"
	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/ipam"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// fakeEngine is the Node's ports and the attach engine: what it attached is what Of lists.
type fakeEngine struct {
	ports map[string][]Current // container ID -> attachments
	fail  map[string]error     // network key -> Attach error
	calls []string
	// onAttach runs after a successful attach (a sandbox going away meanwhile).
	onAttach func()
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{ports: map[string][]Current{}, fail: map[string]error{}}
}

func (f *fakeEngine) Of(_ context.Context, containerID string) ([]Current, error) {
	return slices.Clone(f.ports[containerID]), nil
}

func (f *fakeEngine) Attach(_ context.Context, sb plan.Sandbox, networks []plan.Attachment) ([]engine.Attached, error) {
	var out []engine.Attached
	for _, n := range networks {
		f.calls = append(f.calls, "attach "+n.IfName)
		if err := f.fail[n.Network]; err != nil {
			return nil, &engine.AttachError{Network: n.Network, IfName: n.IfName, Err: err}
		}
		if !n.WritesStatus {
			return nil, fmt.Errorf("network %s attached without recording its network-status", n.Network)
		}
	}
	for _, n := range networks {
		a := engine.Attached{Attachment: n, HostIfName: "pvl-" + n.IfName,
			Addressing: plan.Addressing{IPs: []ipam.IPConfig{{Address: mustPrefix("198.18.100.2/24")}}}}
		out = append(out, a)
		f.ports[sb.ContainerID] = append(f.ports[sb.ContainerID], Current{Identity: Identity{n.Network, n.IfName},
			Port: a.HostIfName, Status: statusJSON(a)})
	}
	if f.onAttach != nil {
		f.onAttach()
	}
	return out, nil
}

func (f *fakeEngine) DetachInterfaces(_ context.Context, sb plan.Sandbox, ifNames ...string) error {
	for _, name := range ifNames {
		f.calls = append(f.calls, "detach "+name)
		f.ports[sb.ContainerID] = slices.DeleteFunc(f.ports[sb.ContainerID], func(c Current) bool { return c.IfName == name })
	}
	return nil
}

type fakeSandboxes map[k8stypes.UID]Sandbox

func (f fakeSandboxes) Lookup(uid k8stypes.UID) (Sandbox, bool) {
	sb, ok := f[uid]
	return sb, ok
}

type fakeBusy map[string]bool

func (f fakeBusy) Busy(id string) bool { return f[id] }

// fakeResolver knows networks by key; a key it does not know has no NetworkAttachmentDefinition.
type fakeResolver struct {
	networks map[string]plan.Attachment
	foreign  map[string]bool
}

func (f *fakeResolver) Resolve(_ context.Context, el selection.Element) (*plan.Attachment, bool, error) {
	key := el.NetworkKey()
	if f.foreign[key] {
		return nil, true, nil
	}
	n, ok := f.networks[key]
	if !ok {
		return nil, false, WithReason(ReasonNADNotFound, fmt.Errorf("network %s: NetworkAttachmentDefinition %s not found", key, key))
	}
	n.IfName = el.Interface
	return &n, false, nil
}

type event struct{ Type, Reason, Message string }

// fakeStatus writes into the Pod in the indexer, as the API server and the informer would.
type fakeStatus struct {
	indexer  cache.Indexer
	events   []event
	statuses int
	conds    int
}

func (f *fakeStatus) pod(namespace, name string) *corev1.Pod {
	obj, ok, _ := f.indexer.GetByKey(namespace + "/" + name)
	if !ok {
		return nil
	}
	return obj.(*corev1.Pod).DeepCopy()
}

func (f *fakeStatus) SetCondition(_ context.Context, pod *corev1.Pod, c corev1.PodCondition) error {
	f.conds++
	p := f.pod(pod.Namespace, pod.Name)
	p.Status.Conditions = slices.DeleteFunc(p.Status.Conditions, func(have corev1.PodCondition) bool { return have.Type == c.Type })
	p.Status.Conditions = append(p.Status.Conditions, c)
	return f.indexer.Update(p)
}

func (f *fakeStatus) SetNetworkStatus(_ context.Context, ref podstatus.PodRef, managed []string, ours []nadv1.NetworkStatus) error {
	f.statuses++
	p := f.pod(ref.Namespace, ref.Name)
	value, _, err := podstatus.MergeNetworkStatus(p.Annotations[nadv1.NetworkStatusAnnot], managed, ours)
	if err != nil {
		return err
	}
	p.Annotations[nadv1.NetworkStatusAnnot] = value
	return f.indexer.Update(p)
}

func (f *fakeStatus) Event(_ *corev1.Pod, eventType, reason, message string) {
	f.events = append(f.events, event{eventType, reason, message})
}

func (f *fakeStatus) reasons() []string {
	var out []string
	for _, e := range f.events {
		out = append(out, e.Reason)
	}
	return out
}

type fixture struct {
	t         *testing.T
	c         *Controller
	indexer   cache.Indexer
	engine    *fakeEngine
	sandboxes fakeSandboxes
	busy      fakeBusy
	resolver  *fakeResolver
	status    *fakeStatus
	ready     error
}

func newFixture(t *testing.T, hotplug bool) *fixture {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	f := &fixture{t: t, indexer: indexer, engine: newFakeEngine(), sandboxes: fakeSandboxes{}, busy: fakeBusy{},
		resolver: &fakeResolver{networks: map[string]plan.Attachment{
			"ns/vlan100":       {Network: "ns/vlan100", VLAN: 100, Pools: []string{"vlan100-ipv4"}},
			"networks/vlan200": {Network: "networks/vlan200", VLAN: 200},
		}, foreign: map[string]bool{"ns/macvlan": true}},
		status: &fakeStatus{indexer: indexer}}
	f.c = New(Options{Pods: corelisters.NewPodLister(indexer), Sandboxes: f.sandboxes, ADDs: f.busy,
		Attachments: f.engine, Attacher: f.engine, Resolver: f.resolver, Status: f.status, Hotplug: hotplug,
		Ready: func() error { return f.ready }, Now: func() time.Time { return now }})
	return f
}

// runningPod adds a Pod with a sandbox whose ADD is long over.
func (f *fixture) runningPod(annotation string) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "uid-1",
		Annotations: map[string]string{}}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if annotation != "" {
		pod.Annotations[selection.AnnotationKey] = annotation
	}
	if err := f.indexer.Add(pod); err != nil {
		f.t.Fatal(err)
	}
	f.sandboxes[pod.UID] = Sandbox{ContainerID: "c1", NetNS: "/var/run/netns/cni-1", Chained: true, Added: now.Add(-time.Minute)}
	return pod
}

func (f *fixture) annotate(annotation string) {
	p := f.status.pod("ns", "p")
	if annotation == "" {
		delete(p.Annotations, selection.AnnotationKey)
	} else {
		p.Annotations[selection.AnnotationKey] = annotation
	}
	if err := f.indexer.Update(p); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) sync() Result {
	f.t.Helper()
	res, err := f.c.Sync(context.Background(), "ns/p")
	if err != nil {
		f.t.Fatalf("Sync() error = %v", err)
	}
	return res
}

func (f *fixture) condition() *corev1.PodCondition {
	return FindCondition(f.status.pod("ns", "p"), ConditionType)
}

func (f *fixture) wantCondition(status corev1.ConditionStatus, reason string) {
	f.t.Helper()
	c := f.condition()
	if c == nil || c.Status != status || c.Reason != reason {
		f.t.Fatalf("condition = %+v, want %s/%s", c, status, reason)
	}
}

func (f *fixture) interfaces() []string {
	var out []string
	for _, c := range f.engine.ports["c1"] {
		out = append(out, c.IfName)
	}
	return out
}

func (f *fixture) statusInterfaces() []string {
	var entries []nadv1.NetworkStatus
	if v := f.status.pod("ns", "p").Annotations[nadv1.NetworkStatusAnnot]; v != "" {
		if err := json.Unmarshal([]byte(v), &entries); err != nil {
			f.t.Fatal(err)
		}
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Interface)
	}
	return out
}

func TestFirstAnnotationOfARunningPodIsAttached(t *testing.T) {
	f := newFixture(t, false)
	f.runningPod("")
	if res := f.sync(); res != (Result{}) || len(f.engine.calls) > 0 || f.status.conds > 0 {
		t.Fatalf("a Pod without networks: result %+v, calls %v, %d condition writes", res, f.engine.calls, f.status.conds)
	}
	f.annotate("vlan100")
	if res := f.sync(); res != (Result{}) {
		t.Fatalf("Sync() = %+v, want done", res)
	}
	if got := f.interfaces(); !reflect.DeepEqual(got, []string{"eth1"}) {
		t.Fatalf("interfaces = %v, want [eth1]", got)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)
	if got := f.statusInterfaces(); !reflect.DeepEqual(got, []string{"eth1"}) {
		t.Errorf("network-status interfaces = %v, want [eth1]", got)
	}
	if got := f.status.reasons(); !reflect.DeepEqual(got, []string{podstatus.ReasonAttached}) {
		t.Errorf("events = %v", f.status.events)
	}
	// Level-triggered: another sync finds nothing to do and writes nothing.
	calls, conds, statuses := len(f.engine.calls), f.status.conds, f.status.statuses
	f.sync()
	if len(f.engine.calls) != calls || f.status.conds != conds || f.status.statuses != statuses || len(f.status.events) != 1 {
		t.Errorf("a second sync acted: calls %v, %d condition and %d status writes, events %v",
			f.engine.calls, f.status.conds, f.status.statuses, f.status.events)
	}
}

func TestNoActionUntilTheSandboxsADDIsOver(t *testing.T) {
	f := newFixture(t, true)
	f.runningPod("vlan100")

	delete(f.sandboxes, "uid-1")
	if res := f.sync(); !res.Retry {
		t.Errorf("no sandbox recorded: Sync() = %+v, want a retry", res)
	}
	f.sandboxes["uid-1"] = Sandbox{ContainerID: "c1", Chained: true, Added: now.Add(-time.Minute)}
	f.busy["c1"] = true
	if res := f.sync(); !res.Retry {
		t.Errorf("ADD in flight: Sync() = %+v, want a retry", res)
	}
	delete(f.busy, "c1")
	f.sandboxes["uid-1"] = Sandbox{ContainerID: "c1", Chained: true, Added: now.Add(-300 * time.Millisecond)}
	if res := f.sync(); res.After != 700*time.Millisecond {
		t.Errorf("record younger than SettleTime: Sync() = %+v, want After 700ms", res)
	}
	f.sandboxes["uid-1"] = Sandbox{ContainerID: "c1", Chained: false, Added: now.Add(-time.Minute)}
	if res := f.sync(); res != (Result{}) {
		t.Errorf("sandbox of Multus delegates: Sync() = %+v, want nothing", res)
	}
	if len(f.engine.calls) > 0 || f.status.conds > 0 {
		t.Fatalf("acted before the ADD was over: calls %v, %d condition writes", f.engine.calls, f.status.conds)
	}
}

func TestAMissingNetworkIsAttachedOnceItExists(t *testing.T) {
	f := newFixture(t, false)
	f.runningPod("vlan100,networks/vlan300@net3")
	if res := f.sync(); !res.Retry {
		t.Fatalf("Sync() = %+v, want a retry", res)
	}
	f.wantCondition(corev1.ConditionFalse, ReasonNADNotFound)
	if !strings.Contains(f.condition().Message, "networks/vlan300") {
		t.Errorf("condition message %q does not name the network", f.condition().Message)
	}
	if len(f.engine.calls) > 0 {
		t.Errorf("hot-plug off, first attachment is all or nothing, but: %v", f.engine.calls)
	}
	if got := f.status.reasons(); !reflect.DeepEqual(got, []string{podstatus.ReasonAttachFailed}) {
		t.Errorf("events = %v", f.status.events)
	}
	f.sync() // the same failure again: no second Event
	if len(f.status.events) != 1 {
		t.Errorf("a repeated failure recorded another Event: %v", f.status.events)
	}

	f.resolver.networks["networks/vlan300"] = plan.Attachment{Network: "networks/vlan300", VLAN: 300}
	if res := f.sync(); res != (Result{}) {
		t.Fatalf("Sync() = %+v, want done", res)
	}
	if got := f.interfaces(); !reflect.DeepEqual(got, []string{"eth1", "net3"}) {
		t.Errorf("interfaces = %v", got)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)
}

func TestHotplugAddsAndRemovesOnlyWhatChanged(t *testing.T) {
	f := newFixture(t, true)
	f.runningPod("vlan100")
	f.sync()
	f.engine.calls = nil

	f.annotate("vlan100,networks/vlan200@net2")
	f.sync()
	if want := []string{"attach net2"}; !reflect.DeepEqual(f.engine.calls, want) {
		t.Errorf("adding net2: calls %v, want %v (eth1 untouched)", f.engine.calls, want)
	}
	if got := f.statusInterfaces(); !reflect.DeepEqual(got, []string{"eth1", "net2"}) {
		t.Errorf("network-status interfaces = %v", got)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)

	f.engine.calls = nil
	f.annotate("vlan100")
	f.sync()
	if want := []string{"detach net2"}; !reflect.DeepEqual(f.engine.calls, want) {
		t.Errorf("removing net2: calls %v, want %v", f.engine.calls, want)
	}
	if got := f.statusInterfaces(); !reflect.DeepEqual(got, []string{"eth1"}) {
		t.Errorf("network-status interfaces = %v, want [eth1]", got)
	}
	if got := f.status.events[len(f.status.events)-1]; got.Reason != EventDetached || !strings.Contains(got.Message, "net2") {
		t.Errorf("last event = %+v, want NetworkDetached naming net2", got)
	}

	f.engine.calls = nil
	f.annotate("")
	f.sync()
	if got := f.interfaces(); len(got) != 0 {
		t.Errorf("annotation removed: interfaces left %v", got)
	}
	if got := f.statusInterfaces(); len(got) != 0 {
		t.Errorf("annotation removed: network-status still lists %v", got)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonNoNetworks)
}

func TestWithoutHotplugAChangeIsRefusedOnce(t *testing.T) {
	f := newFixture(t, false)
	f.runningPod("vlan100")
	f.sync()
	f.engine.calls = nil
	events := len(f.status.events)

	f.annotate("vlan100,networks/vlan200@net2")
	f.sync()
	f.sync()
	if len(f.engine.calls) > 0 {
		t.Errorf("a refused change acted: %v", f.engine.calls)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonChangeNotApplied)
	got := f.status.events[events:]
	if len(got) != 1 || got[0].Reason != EventChangeNotApplied || got[0].Type != corev1.EventTypeWarning ||
		!strings.Contains(got[0].Message, "add net2 (networks/vlan200)") || !strings.Contains(got[0].Message, "SecondaryNetworkHotplug") {
		t.Errorf("events = %+v, want one Warning NetworkChangeNotApplied naming the change and the gate", got)
	}

	f.annotate("")
	f.sync()
	if got := f.interfaces(); !reflect.DeepEqual(got, []string{"eth1"}) {
		t.Errorf("annotation removed without hot-plug: interfaces %v, want [eth1] kept", got)
	}
	if c := f.condition(); !strings.Contains(c.Message, "remove eth1 (ns/vlan100)") {
		t.Errorf("condition message = %q", c.Message)
	}
}

func TestAttachFailuresNameTheirReason(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"a full pool", &ipam.PoolExhaustedError{Pool: "vlan100-ipv4", Total: 2}, ReasonIPPoolExhausted},
		{"a pool deleted meanwhile", &ipam.PoolNotFoundError{Pool: "vlan100-ipv4"}, ReasonIPPoolNotFound},
		{"anything else", errors.New("netlink: operation not permitted"), ReasonAttachFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, true)
			f.runningPod("vlan100")
			f.engine.fail["ns/vlan100"] = fmt.Errorf("allocate addresses: %w", tt.err)
			if res := f.sync(); !res.Retry {
				t.Errorf("Sync() = %+v, want a retry", res)
			}
			f.wantCondition(corev1.ConditionFalse, tt.want)
			if !strings.Contains(f.condition().Message, tt.err.Error()) {
				t.Errorf("condition message %q lacks %q", f.condition().Message, tt.err)
			}
		})
	}
}

func TestHotplugAttachesEachNetworkOnItsOwn(t *testing.T) {
	f := newFixture(t, true)
	f.runningPod("vlan100,networks/vlan200@net2")
	f.engine.fail["ns/vlan100"] = &ipam.PoolExhaustedError{Pool: "vlan100-ipv4", Total: 2}
	f.sync()
	if got := f.interfaces(); !reflect.DeepEqual(got, []string{"net2"}) {
		t.Errorf("interfaces = %v, want [net2] despite eth1 failing", got)
	}
	f.wantCondition(corev1.ConditionFalse, ReasonIPPoolExhausted)
	delete(f.engine.fail, "ns/vlan100")
	f.sync()
	if got := f.interfaces(); !reflect.DeepEqual(got, []string{"net2", "eth1"}) {
		t.Errorf("interfaces = %v", got)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)
	if got := f.statusInterfaces(); !reflect.DeepEqual(got, []string{"eth1", "net2"}) {
		t.Errorf("network-status interfaces = %v, want annotation order", got)
	}
}

func TestAnUnfinishedAttachmentIsRedone(t *testing.T) {
	f := newFixture(t, false)
	f.runningPod("vlan100")
	// The agent stopped between making the port and recording the attachment.
	f.engine.ports["c1"] = []Current{{Identity: Identity{"ns/vlan100", "eth1"}, Port: "pvl-eth1"}}
	f.sync()
	if want := []string{"detach eth1", "attach eth1"}; !reflect.DeepEqual(f.engine.calls, want) {
		t.Errorf("calls = %v, want %v", f.engine.calls, want)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)
}

func TestAnInvalidAnnotationChangesNothing(t *testing.T) {
	f := newFixture(t, true)
	f.runningPod("vlan100")
	f.sync()
	f.engine.calls = nil
	f.annotate(`[{"name": vlan100}]`)
	if res := f.sync(); res.Retry {
		t.Errorf("Sync() = %+v: an invalid annotation waits for the next edit, not a retry", res)
	}
	if len(f.engine.calls) > 0 {
		t.Errorf("calls = %v", f.engine.calls)
	}
	f.wantCondition(corev1.ConditionFalse, ReasonInvalidAnnotation)
}

func TestAnUnavailableAgentOnlyFillsAMissingCondition(t *testing.T) {
	f := newFixture(t, false)
	f.runningPod("vlan100")
	f.ready = errors.New("antrea-agent is not connected to OVSDB")
	if res := f.sync(); !res.Retry {
		t.Errorf("Sync() = %+v, want a retry", res)
	}
	f.wantCondition(corev1.ConditionFalse, ReasonAgentUnavailable)

	f.ready = nil
	f.sync()
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)
	f.ready = errors.New("antrea-agent is not connected to OVSDB")
	f.sync()
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)
}

func TestASandboxGoneWhileAttachingKeepsNothing(t *testing.T) {
	f := newFixture(t, false)
	f.runningPod("vlan100")
	f.engine.onAttach = func() { delete(f.sandboxes, "uid-1") }
	if res := f.sync(); !res.Retry {
		t.Errorf("Sync() = %+v, want a retry", res)
	}
	if got := f.interfaces(); len(got) != 0 {
		t.Errorf("interfaces left on a sandbox that went away: %v", got)
	}
}

func TestAReadinessGateGetsTheConditionWithoutNetworks(t *testing.T) {
	f := newFixture(t, false)
	pod := f.runningPod("")
	pod = pod.DeepCopy()
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: ConditionType}}
	if err := f.indexer.Update(pod); err != nil {
		t.Fatal(err)
	}
	f.sync()
	f.wantCondition(corev1.ConditionTrue, ReasonNoNetworks)
}

func TestPodsThatNeedNothingAreNotQueued(t *testing.T) {
	f := newFixture(t, true)
	h := f.c.PodHandler()
	h.OnAdd(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain"}}, false)
	h.OnAdd(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "host",
		Annotations: map[string]string{selection.AnnotationKey: "vlan100"}}, Spec: corev1.PodSpec{HostNetwork: true}}, false)
	if n := f.c.queue.Len(); n != 0 {
		t.Fatalf("queue holds %d Pods that need nothing", n)
	}
	h.OnAdd(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "asks",
		Annotations: map[string]string{selection.AnnotationKey: "vlan100"}}}, false)
	if n := f.c.queue.Len(); n != 1 {
		t.Fatalf("queue holds %d Pods, want the one asking for a network", n)
	}
}

func TestForeignNetworksAreLeftToTheirPlugin(t *testing.T) {
	f := newFixture(t, false)
	f.runningPod("vlan100")
	f.sync()
	f.engine.calls = nil
	f.annotate("vlan100,macvlan@eth2")
	f.sync()
	if len(f.engine.calls) > 0 {
		t.Errorf("calls = %v", f.engine.calls)
	}
	f.wantCondition(corev1.ConditionTrue, ReasonAttached)
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestANewNetworkRequeuesOnlyWaitingPods(t *testing.T) {
	f := newFixture(t, false)
	f.runningPod("vlan100")
	f.sync()
	waiting := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "waiting", UID: "uid-2",
		Annotations: map[string]string{selection.AnnotationKey: "vlan300"}},
		Status: corev1.PodStatus{Conditions: []corev1.PodCondition{{Type: ConditionType, Status: corev1.ConditionFalse}}}}
	plain := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "plain", UID: "uid-3"}}
	for _, p := range []*corev1.Pod{waiting, plain} {
		if err := f.indexer.Add(p); err != nil {
			t.Fatal(err)
		}
	}
	f.c.resyncWaiting()
	if n := f.c.queue.Len(); n != 1 {
		t.Fatalf("queue holds %d Pods, want only the waiting one", n)
	}
	if key, _ := f.c.queue.Get(); key != "ns/waiting" {
		t.Errorf("queued %q, want ns/waiting", key)
	}
}
