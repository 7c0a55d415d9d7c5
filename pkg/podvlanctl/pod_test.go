package podvlanctl

import (
	"slices"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func podInput(p *corev1.Pod, events ...corev1.Event) PodInput {
	in := PodInput{Pod: p, NADs: map[string]*nadv1.NetworkAttachmentDefinition{}, Pools: map[string]*v1beta1.IPPool{}, Holders: map[string][]Holder{}, Events: events}
	for _, n := range allTestNADs {
		in.NADs[n.Namespace+"/"+n.Name] = n
	}
	for _, p := range []*v1beta1.IPPool{
		pool("vlan100-ipv4", "198.18.100.1", 100, 61, held("198.18.100.2", "demo", "multi", string(podUID), containerID1, "eth1")),
		pool("vlan200-ipv4", "198.18.200.1", 0, 61, held("198.18.200.2", "demo", "multi", string(podUID), containerID1, "eth200")),
	} {
		in.Pools[p.Name] = p
		in.Holders[p.Name] = HoldersFromStatus(p)
	}
	return in
}

const multiStatus = `[{"name":"bridge","interface":"eth0","ips":["10.244.0.5"],"default":true},
 {"name":"demo/vlan100","interface":"eth1","ips":["198.18.100.2"],"mac":"02:00:00:00:01:01","default":false},
 {"name":"networks/vlan200","interface":"eth200","ips":["198.18.200.2"],"mac":"02:00:00:00:02:02","default":false}]`

func TestBuildPodReport(t *testing.T) {
	attached := pod("demo", "multi", "node-1", map[string]string{
		nadv1.NetworkAttachmentAnnot: `[{"name":"vlan100"},{"name":"vlan200","namespace":"networks","interface":"eth200"}]`,
		nadv1.NetworkStatusAnnot:     multiStatus,
	})
	attached.Status.Conditions = []corev1.PodCondition{{Type: ConditionSecondaryNetworksReady, Status: corev1.ConditionTrue, Reason: "Attached"}}
	pending := pod("demo", "multi", "node-1", map[string]string{nadv1.NetworkAttachmentAnnot: "vlan100,networks/vlan200@eth200"})
	pending.Status.Phase = corev1.PodPending

	type want struct {
		ifName, network, addrs, ovsPort string
		vlan                            *int
		attached                        bool
		problem, event                  string
	}
	cases := []struct {
		name       string
		in         PodInput
		condition  bool
		podProblem string
		want       []want
	}{{
		name:      "attached Pod: addresses from network-status, VLAN from the pool or the NAD, port from the allocation's sandbox",
		in:        podInput(attached, event("demo", "Pod", "multi", AgentComponent, "Normal", "NetworkAttached", "attached eth1 198.18.100.2/24 (demo/vlan100, VLAN 100); eth200 198.18.200.2/24 (networks/vlan200, VLAN 200)", t0)),
		condition: true,
		want: []want{
			{ifName: "eth1", network: "demo/vlan100", addrs: "198.18.100.2", vlan: ptr(100), attached: true, ovsPort: veth.HostName(containerID1, "eth1"), event: "NetworkAttached"},
			{ifName: "eth200", network: "networks/vlan200", addrs: "198.18.200.2", vlan: ptr(200), attached: true, ovsPort: veth.HostName(containerID1, "eth200"), event: "NetworkAttached"},
		},
	}, {
		name: "Pod not attached yet: the agent's newest Event naming the interface, not the kubelet's",
		in: podInput(pending,
			event("demo", "Pod", "multi", AgentComponent, "Warning", "NetworkAttachFailed", "eth200: IPPool vlan200-ipv4 is exhausted", t0),
			event("demo", "Pod", "multi", AgentComponent, "Warning", "NetworkAttachFailed", "eth1: bridge br-secondary is not ready", t0.Add(-1e9)),
			event("demo", "Pod", "multi", "kubelet", "Warning", "FailedCreatePodSandBox", "eth1 eth200 failed", t0.Add(5e9))),
		want: []want{
			{ifName: "eth1", network: "demo/vlan100", addrs: "198.18.100.2", vlan: ptr(100), ovsPort: veth.HostName(containerID1, "eth1"), event: "NetworkAttachFailed"},
			{ifName: "eth200", network: "networks/vlan200", addrs: "198.18.200.2", vlan: ptr(200), ovsPort: veth.HostName(containerID1, "eth200"), event: "NetworkAttachFailed"},
		},
	}, {
		name: "network without IPAM: no addresses and no OVS port name from the API",
		in: podInput(pod("demo", "l2", "node-1", map[string]string{nadv1.NetworkAttachmentAnnot: "vlan100-l2",
			nadv1.NetworkStatusAnnot: `[{"name":"demo/vlan100-l2","interface":"eth1","mac":"02:00:00:00:00:09"}]`})),
		want: []want{{ifName: "eth1", network: "demo/vlan100-l2", vlan: ptr(100), attached: true}},
	}, {
		name: "missing NAD, another plugin's NAD and a missing pool are problems of their interface",
		in: func() PodInput {
			in := podInput(pod("demo", "bad", "node-1", map[string]string{nadv1.NetworkAttachmentAnnot: "nope,other,vlan100"}))
			delete(in.Pools, "vlan100-ipv4")
			return in
		}(),
		want: []want{
			{ifName: "eth1", network: "demo/nope", problem: "NetworkAttachmentDefinition demo/nope not found"},
			{ifName: "eth2", network: "demo/other", problem: `is not of type "antrea"`},
			{ifName: "eth3", network: "demo/vlan100", problem: "IPPool vlan100-ipv4 not found"},
		},
	}, {
		name: "a missing pool leaves the VLAN unknown unless the network sets its own",
		in: func() PodInput {
			in := podInput(pod("demo", "bad", "node-1", map[string]string{nadv1.NetworkAttachmentAnnot: "networks/vlan200"}))
			delete(in.Pools, "vlan200-ipv4")
			return in
		}(),
		want: []want{{ifName: "eth1", network: "networks/vlan200", vlan: ptr(200), problem: "IPPool vlan200-ipv4 not found"}},
	}, {
		name:       "malformed annotation: the parse error, no interfaces",
		in:         podInput(pod("demo", "bad", "node-1", map[string]string{nadv1.NetworkAttachmentAnnot: `[{"name": vlan100}]`})),
		podProblem: "malformed JSON",
	}, {
		name: "allocation of an earlier Pod of the same name (other UID) is not this Pod's",
		in: func() PodInput {
			in := podInput(pod("demo", "multi", "node-1", map[string]string{nadv1.NetworkAttachmentAnnot: "vlan100"}))
			in.Pod.UID = "uid-2"
			return in
		}(),
		want: []want{{ifName: "eth1", network: "demo/vlan100", vlan: ptr(100)}},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := BuildPodReport(tc.in)
			if (r.Condition != nil) != tc.condition {
				t.Errorf("condition %+v, want present=%v", r.Condition, tc.condition)
			}
			if tc.podProblem != "" && !strings.Contains(r.Problem, tc.podProblem) || tc.podProblem == "" && r.Problem != "" {
				t.Errorf("problem %q, want one containing %q", r.Problem, tc.podProblem)
			}
			if len(r.Interfaces) != len(tc.want) {
				t.Fatalf("interfaces %+v, want %d", r.Interfaces, len(tc.want))
			}
			for i, w := range tc.want {
				got := r.Interfaces[i]
				if got.Interface != w.ifName || got.Network != w.network || strings.Join(got.Addresses, ",") != w.addrs ||
					got.OVSPort != w.ovsPort || got.Attached != w.attached {
					t.Errorf("interface %d: %+v, want %+v", i, got, w)
				}
				if (got.VLAN == nil) != (w.vlan == nil) || got.VLAN != nil && *got.VLAN != *w.vlan {
					t.Errorf("%s: VLAN %v, want %v", w.ifName, got.VLAN, w.vlan)
				}
				if w.problem != "" && !slices.ContainsFunc(got.Problems, func(p string) bool { return strings.Contains(p, w.problem) }) ||
					w.problem == "" && len(got.Problems) > 0 {
					t.Errorf("%s: problems %q, want one containing %q", w.ifName, got.Problems, w.problem)
				}
				if w.event != "" && (got.LastEvent == nil || got.LastEvent.Reason != w.event || !mentions(got.LastEvent.Message, w.ifName)) {
					t.Errorf("%s: last event %+v, want the agent's %s naming it", w.ifName, got.LastEvent, w.event)
				}
			}
		})
	}
}

func TestMentions(t *testing.T) {
	cases := []struct {
		message, word string
		want          bool
	}{
		{"attached eth1 198.18.100.2/24", "eth1", true},
		{"attached eth10 198.18.100.2/24", "eth1", false},
		{"eth1: failed", "eth1", true},
		{"attach to demo/vlan100: ok", "demo/vlan100", true},
		{"demo/vlan100-l2 attached", "demo/vlan100", false},
		{"uplink eth1.", "eth1", true},
	}
	for _, tc := range cases {
		if got := mentions(tc.message, tc.word); got != tc.want {
			t.Errorf("mentions(%q, %q) = %v, want %v", tc.message, tc.word, got, tc.want)
		}
	}
}
