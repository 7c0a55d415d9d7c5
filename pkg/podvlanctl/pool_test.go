package podvlanctl

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

func TestBuildPoolReport(t *testing.T) {
	p := pool("vlan100-ipv4", "198.18.100.1", 100, 4,
		held("198.18.100.2", "demo", "a", "uid-1", "c1", "eth1"),
		held("198.18.100.3", "demo", "b", "uid-b", "c2", "eth1"),
		held("198.18.100.4", "demo", "gone", "uid-g", "c3", "eth1"),
		held("198.18.100.5", "demo", "recreated", "uid-old", "c4", "eth1"))
	live := func(name, node string, uid string, phase corev1.PodPhase) *corev1.Pod {
		pd := pod("demo", name, node, nil)
		pd.UID, pd.Status.Phase = typesUID(uid), phase
		return pd
	}
	pods := map[string]*corev1.Pod{
		"demo/a":         live("a", "node-1", "uid-1", corev1.PodRunning),
		"demo/b":         live("b", "node-2", "uid-b", corev1.PodRunning),
		"demo/recreated": live("recreated", "node-1", "uid-new", corev1.PodRunning),
	}
	cases := []struct {
		name               string
		pods               map[string]*corev1.Pod
		wantLeaks          int
		wantUnknown        bool
		wantPerNode        []NodeShare
		wantLeakSubstrings []string
	}{{
		name:               "holders whose Pod is gone or recreated are leaks; the others count for their Pod's Node",
		pods:               pods,
		wantLeaks:          2,
		wantPerNode:        []NodeShare{{"", 2}, {"node-1", 1}, {"node-2", 1}},
		wantLeakSubstrings: []string{"", "", "demo/gone no longer exists", "recreated (UID uid-new"},
	}, {
		name:               "a terminated Pod holding an address is a leak",
		pods:               map[string]*corev1.Pod{"demo/a": live("a", "node-1", "uid-1", corev1.PodSucceeded), "demo/b": pods["demo/b"], "demo/recreated": pods["demo/recreated"]},
		wantLeaks:          3,
		wantPerNode:        []NodeShare{{"", 3}, {"node-2", 1}},
		wantLeakSubstrings: []string{"has terminated (Succeeded)", "", "no longer exists", "recreated"},
	}, {
		name:               "Pods not readable: no leak claimed, share by unknown Node",
		pods:               nil,
		wantUnknown:        true,
		wantPerNode:        []NodeShare{{"", 4}},
		wantLeakSubstrings: []string{"", "", "", ""},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := BuildPoolReport(PoolInput{Pool: p, Holders: HoldersFromStatus(p), Pods: tc.pods})
			if r.Used != 4 || r.Total != 4 || r.UsedFraction != 1 || r.VLAN != 100 || r.Subnet != "198.18.100.1/24" || !reflect.DeepEqual(r.Ranges, []string{"198.18.100.0/26"}) {
				t.Errorf("summary %+v", r)
			}
			if r.Leaks != tc.wantLeaks || r.LeaksUnknown != tc.wantUnknown {
				t.Errorf("leaks %d (unknown %v), want %d (%v)", r.Leaks, r.LeaksUnknown, tc.wantLeaks, tc.wantUnknown)
			}
			if !reflect.DeepEqual(r.PerNode, tc.wantPerNode) {
				t.Errorf("per Node %+v, want %+v", r.PerNode, tc.wantPerNode)
			}
			for i, want := range tc.wantLeakSubstrings {
				got := r.Holders[i].Leak
				if want == "" && got != "" || !strings.Contains(got, want) {
					t.Errorf("holder %s: leak %q, want %q", r.Holders[i].IP, got, want)
				}
			}
		})
	}
}

func TestBuildPoolReportRecordedNodeWins(t *testing.T) {
	// Per-Node blocks record the Node of an allocation; the view keeps it.
	p := pool("p", "10.0.0.1", 0, 10)
	holders := []Holder{{IP: "10.0.0.2", Namespace: "demo", Pod: "a", Node: "node-3"}}
	r := BuildPoolReport(PoolInput{Pool: p, Holders: holders, Pods: map[string]*corev1.Pod{"demo/a": pod("demo", "a", "node-1", nil)}})
	if !reflect.DeepEqual(r.PerNode, []NodeShare{{"node-3", 1}}) || r.Used != 1 {
		t.Errorf("report %+v, want the recorded node-3", r)
	}
}
