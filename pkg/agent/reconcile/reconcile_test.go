package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/agent/plan"
	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/ovs"
)

type fakePorts []ovs.PodPort

func (f fakePorts) ListPodPorts(context.Context, string) ([]ovs.PodPort, error) { return f, nil }

type fakeDetacher struct{ detached, abandoned []string }

func (f *fakeDetacher) Abandon(_ context.Context, in ovs.Intent) error {
	f.abandoned = append(f.abandoned, in.Key())
	return nil
}

type fakeIntents []ovs.Intent

func (f fakeIntents) ListIntents(context.Context) ([]ovs.Intent, error) { return f, nil }

func noNetNS(string) bool { return false }

func (f *fakeDetacher) Detach(_ context.Context, sb plan.Sandbox) error {
	f.detached = append(f.detached, sb.ContainerID)
	return nil
}

type fakePods map[string]string // "ns/name" -> uid

func (f fakePods) Exists(_ context.Context, ns, name, uid string) (bool, error) {
	got, ok := f[ns+"/"+name]
	if name == "api-down" {
		return false, errors.New("connection refused")
	}
	return ok && (uid == "" || got == uid), nil
}

func port(name, ns, pod, uid, container string) ovs.PodPort {
	return ovs.PodPort{Name: name, Owner: ovs.PortOwner{PodNamespace: ns, PodName: pod, PodUID: uid, ContainerID: container, IfName: "eth1"}}
}

func TestOnce(t *testing.T) {
	ports := fakePorts{
		port("pvl-live", "ns", "live", "u1", "c-live"),
		port("pvl-gone", "ns", "deleted", "u2", "c-deleted"),
		port("pvl-recreated", "ns", "recreated", "old-uid", "c-recreated"),
		port("pvl-nons", "ns", "live", "u1", "c-old-sandbox"),
		port("pvl-api-down", "ns", "api-down", "u9", "c-unsure"),
		port("pvl-multi-a", "ns", "multi", "u5", "c-multi"),
		port("pvl-multi-b", "ns", "multi", "u5", "c-multi"),
	}
	links := map[string]bool{"pvl-live": true, "pvl-gone": true, "pvl-recreated": true, "pvl-api-down": true, "pvl-multi-b": true}
	pods := fakePods{"ns/live": "u1", "ns/recreated": "new-uid", "ns/multi": "u5"}
	det := &fakeDetacher{}
	r := New("br", ports, fakeIntents(nil), det, pods, func(name string) (bool, error) { return links[name], nil }, noNetNS)
	cleaned, err := r.Once(context.Background())
	if err == nil || !strings.Contains(err.Error(), "api-down") {
		t.Errorf("error %v, want the failed Pod lookup reported", err)
	}
	sort.Strings(det.detached)
	want := []string{"c-deleted", "c-old-sandbox", "c-recreated"}
	if strings.Join(det.detached, ",") != strings.Join(want, ",") {
		t.Errorf("detached %v, want %v (kept: live Pod, unsure lookup, a container with one live veth)", det.detached, want)
	}
	reasons := map[string]string{}
	for _, s := range cleaned {
		reasons[s.Sandbox.ContainerID] = s.Reason
	}
	if !strings.Contains(reasons["c-old-sandbox"], "network namespace") || !strings.Contains(reasons["c-deleted"], "no longer exists") {
		t.Errorf("reasons %v", reasons)
	}
}

type fakeStatuses struct {
	queued map[string][]nadv1.NetworkStatus
}

func (f *fakeStatuses) QueueNetworkStatus(pod podstatus.PodRef, ours []nadv1.NetworkStatus) {
	if f.queued == nil {
		f.queued = map[string][]nadv1.NetworkStatus{}
	}
	f.queued[pod.Name] = ours
}

func TestOnceWritesTheNetworkStatusLivePodsLack(t *testing.T) {
	entry := func(ifName, ip string) nadv1.NetworkStatus {
		return nadv1.NetworkStatus{Name: "ns/vlan100", Interface: ifName, IPs: []string{ip}}
	}
	recorded := func(name, pod, uid, container string, e nadv1.NetworkStatus) ovs.PodPort {
		p := port(name, "ns", pod, uid, container)
		p.Owner.IfName = e.Interface
		data, _ := json.Marshal(e)
		p.NetworkStatus = string(data)
		return p
	}
	written, _, _ := podstatus.MergeNetworkStatus("", nil, []nadv1.NetworkStatus{entry("eth1", "10.0.0.3")})
	podsByName := map[string]*corev1.Pod{
		"lost":       {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "lost", UID: "u1"}},
		"written":    {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "written", UID: "u2", Annotations: map[string]string{nadv1.NetworkStatusAnnot: written}}},
		"recreated":  {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "recreated", UID: "new"}},
		"two-boxes":  {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "two-boxes", UID: "u4"}},
		"no-network": {ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "no-network", UID: "u5"}},
	}
	ports := fakePorts{
		recorded("pvl-lost-2", "lost", "u1", "c1", entry("eth2", "10.0.0.2")),
		recorded("pvl-lost-1", "lost", "u1", "c1", entry("eth1", "10.0.0.1")),
		recorded("pvl-written", "written", "u2", "c2", entry("eth1", "10.0.0.3")),
		recorded("pvl-recreated", "recreated", "old", "c3", entry("eth1", "10.0.0.4")),
		recorded("pvl-two-a", "two-boxes", "u4", "c4a", entry("eth1", "10.0.0.5")),
		recorded("pvl-two-b", "two-boxes", "u4", "c4b", entry("eth1", "10.0.0.6")),
		port("pvl-no-network", "ns", "no-network", "u5", "c5"), // a Multus delegate's: nothing recorded
	}
	links := map[string]bool{}
	for _, p := range ports {
		links[p.Name] = true
	}
	pods := fakePods{"ns/lost": "u1", "ns/written": "u2", "ns/recreated": "old", "ns/two-boxes": "u4", "ns/no-network": "u5"}
	statuses := &fakeStatuses{}
	r := New("br", ports, fakeIntents(nil), &fakeDetacher{}, pods, func(name string) (bool, error) { return links[name], nil }, noNetNS)
	r.RestoreStatuses(statuses, func(namespace, name string) (*corev1.Pod, error) { return podsByName[name], nil })
	if _, err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(statuses.queued) != 1 {
		t.Fatalf("queued for %v, want only the Pod that lost its annotation", statuses.queued)
	}
	got := statuses.queued["lost"]
	if len(got) != 2 || got[0].Interface != "eth1" || got[1].Interface != "eth2" {
		t.Errorf("queued %+v, want eth1 and eth2 in interface order", got)
	}
}

func TestJudgeIntent(t *testing.T) {
	alive := func() (bool, error) { return true, nil }
	gone := func() (bool, error) { return false, nil }
	broken := func() (bool, error) { return false, errors.New("connection refused") }
	tests := []struct {
		name       string
		intent     ovs.Intent
		netnsAlive bool
		pod        func() (bool, error)
		wantReason string // empty: kept
		wantErr    bool
	}{
		{name: "an unfinished chained ADD is removed even with its sandbox alive",
			intent: ovs.Intent{ContainerID: "c", IfName: "eth1", NetNS: "/ns", PodName: "p", Way: ovs.WayChained}, netnsAlive: true, pod: alive,
			wantReason: "did not finish"},
		{name: "an unfinished IPAM-only ADD is removed",
			intent: ovs.Intent{ContainerID: "c", IfName: "eth0", NetNS: "/ns", Way: ovs.WayIPAMOnly}, netnsAlive: true, pod: alive,
			wantReason: "did not finish"},
		{name: "a committed IPAM-only attachment of a live sandbox and Pod is kept",
			intent: ovs.Intent{ContainerID: "c", IfName: "eth0", NetNS: "/ns", PodName: "p", Way: ovs.WayIPAMOnly, Committed: true}, netnsAlive: true, pod: alive},
		{name: "a committed IPAM-only attachment whose netns is gone is removed",
			intent: ovs.Intent{ContainerID: "c", IfName: "eth0", NetNS: "/ns", PodName: "p", Way: ovs.WayIPAMOnly, Committed: true}, pod: alive,
			wantReason: "network namespace is gone"},
		{name: "a committed IPAM-only attachment whose Pod is gone is removed",
			intent: ovs.Intent{ContainerID: "c", IfName: "eth0", NetNS: "/ns", PodName: "p", Way: ovs.WayIPAMOnly, Committed: true}, netnsAlive: true, pod: gone,
			wantReason: "Pod no longer exists"},
		{name: "without a netns path only the Pod decides",
			intent: ovs.Intent{ContainerID: "c", IfName: "eth0", PodName: "p", Way: ovs.WayIPAMOnly, Committed: true}, pod: alive},
		{name: "an unanswered Pod lookup keeps the attachment and reports the error",
			intent: ovs.Intent{ContainerID: "c", IfName: "eth0", NetNS: "/ns", PodName: "p", Way: ovs.WayIPAMOnly, Committed: true}, netnsAlive: true, pod: broken,
			wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reason, err := judgeIntent(tt.intent, tt.netnsAlive, tt.pod)
			if (err != nil) != tt.wantErr {
				t.Fatalf("judgeIntent() error = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantReason == "" && reason != "" || !strings.Contains(reason, tt.wantReason) {
				t.Errorf("judgeIntent() = %q, want %q", reason, tt.wantReason)
			}
		})
	}
}

func TestOnceAbandonsStaleIntentsFirst(t *testing.T) {
	intents := fakeIntents{
		{ContainerID: "c-crashed", IfName: "eth1", NetNS: "/live", PodNamespace: "ns", PodName: "live", Way: ovs.WayChained},
		{ContainerID: "c-ipam", IfName: "eth0", NetNS: "/live", PodNamespace: "ns", PodName: "live", PodUID: "u1", Way: ovs.WayIPAMOnly, Committed: true},
		{ContainerID: "c-ipam-gone", IfName: "eth0", NetNS: "/gone", PodNamespace: "ns", PodName: "live", PodUID: "u1", Way: ovs.WayIPAMOnly, Committed: true},
	}
	det := &fakeDetacher{}
	r := New("br", fakePorts(nil), intents, det, fakePods{"ns/live": "u1"}, func(string) (bool, error) { return false, nil },
		func(path string) bool { return path == "/live" })
	cleaned, err := r.Once(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{ovs.IntentKey("c-crashed", "eth1"), ovs.IntentKey("c-ipam-gone", "eth0")}
	if strings.Join(det.abandoned, " ") != strings.Join(want, " ") || len(cleaned) != 2 {
		t.Errorf("abandoned %v (cleaned %+v), want %v", det.abandoned, cleaned, want)
	}
}

type fakeRecords struct{ pruned int }

func (f *fakeRecords) Prune() (int, error) { f.pruned++; return 1, nil }

type failingPorts struct{}

func (failingPorts) ListPodPorts(context.Context, string) ([]ovs.PodPort, error) {
	return nil, errors.New("OVSDB not connected")
}

func TestEveryPassForgetsVanishedSandboxRecordsAlsoWithoutOVSDB(t *testing.T) {
	records := &fakeRecords{}
	r := New("br", failingPorts{}, fakeIntents(nil), &fakeDetacher{}, fakePods{}, func(string) (bool, error) { return false, nil }, noNetNS)
	r.ForgetSandboxRecords(records)
	if _, err := r.Once(context.Background()); err == nil {
		t.Error("Once without OVSDB succeeded, want the port listing's error")
	}
	if _, err := New("br", fakePorts{}, fakeIntents(nil), &fakeDetacher{}, fakePods{}, func(string) (bool, error) { return false, nil }, noNetNS).Once(context.Background()); err != nil {
		t.Errorf("Once without records to prune: %v", err)
	}
	r = New("br", fakePorts{}, fakeIntents(nil), &fakeDetacher{}, fakePods{}, func(string) (bool, error) { return false, nil }, noNetNS)
	r.ForgetSandboxRecords(records)
	if _, err := r.Once(context.Background()); err != nil {
		t.Fatal(err)
	}
	if records.pruned != 2 {
		t.Errorf("records pruned %d times, want once per pass (2), also when OVSDB is away", records.pruned)
	}
}
