package ippoolgc

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func livePod(uid string, phase corev1.PodPhase) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns", UID: types.UID(uid)}, Status: corev1.PodStatus{Phase: phase}}
}

func TestJudgeOwner(t *testing.T) {
	owner := &v1beta1.PodOwner{Name: "p", Namespace: "ns", UID: "uid-1", ContainerID: "c1", IFName: "eth1"}
	noUID := &v1beta1.PodOwner{Name: "p", Namespace: "ns", ContainerID: "c1", IFName: "eth1"}
	tests := []struct {
		name       string
		owner      *v1beta1.PodOwner
		pod        *corev1.Pod
		wantOrphan bool
		wantReason string
	}{
		{"an entry without a Pod owner is never an orphan", nil, nil, false, "no Pod owner"},
		{"an owner whose Pod is gone is an orphan", owner, nil, true, "no longer exists"},
		{"an owner whose Pod was recreated with another UID is an orphan", owner, livePod("uid-2", corev1.PodRunning), true, "recreated under the same name"},
		{"an owner whose Pod has the same UID is kept", owner, livePod("uid-1", corev1.PodRunning), false, "live"},
		{"an owner whose Pod is still pending is kept", owner, livePod("uid-1", corev1.PodPending), false, "live"},
		{"an owner whose Pod succeeded is an orphan", owner, livePod("uid-1", corev1.PodSucceeded), true, "phase Succeeded"},
		{"an owner whose Pod failed is an orphan", owner, livePod("uid-1", corev1.PodFailed), true, "phase Failed"},
		{"an owner without a UID is kept while a Pod of that name exists", noUID, livePod("uid-9", corev1.PodRunning), false, "live"},
		{"an owner without a UID whose Pod is gone is an orphan", noUID, nil, true, "no longer exists"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orphan, reason := JudgeOwner(tt.owner, tt.pod)
			if orphan != tt.wantOrphan || !strings.Contains(reason, tt.wantReason) {
				t.Fatalf("JudgeOwner = %v %q, want %v and a reason containing %q", orphan, reason, tt.wantOrphan, tt.wantReason)
			}
		})
	}
}

func entry(ip, uid, containerID string) v1beta1.IPAddressState {
	return v1beta1.IPAddressState{IPAddress: ip, Phase: v1beta1.IPAddressPhaseAllocated,
		Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: "p", Namespace: "ns", UID: uid, ContainerID: containerID, IFName: "eth1"}}}
}

func TestWithoutEntries(t *testing.T) {
	pool := &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "pool"}}
	pool.Status.IPAddresses = []v1beta1.IPAddressState{
		entry("10.0.0.2", "uid-1", "c1"),
		entry("10.0.0.3", "uid-2", "c2"),
		{IPAddress: "10.0.0.4", Phase: v1beta1.IPAddressPhaseAllocated},
	}
	pool.Status.Usage = v1beta1.IPPoolUsage{Total: 10, Used: 3}
	key := func(ip, uid, cid string) Key {
		return Key{Pool: "pool", IP: ip, Namespace: "ns", Name: "p", UID: uid, ContainerID: cid, IFName: "eth1"}
	}
	tests := []struct {
		name        string
		keys        []Key
		wantRemoved []string
		wantKept    []string
	}{
		{"the judged entry is removed and the usage recounted", []Key{key("10.0.0.2", "uid-1", "c1")}, []string{"10.0.0.2"}, []string{"10.0.0.3", "10.0.0.4"}},
		{"an entry handed out again to another owner is kept", []Key{key("10.0.0.3", "uid-1", "c1")}, nil, []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}},
		{"an entry of another container of the same Pod is kept", []Key{key("10.0.0.2", "uid-1", "c9")}, nil, []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}},
		{"no keys remove nothing", nil, nil, []string{"10.0.0.2", "10.0.0.3", "10.0.0.4"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys := map[Key]bool{}
			for _, k := range tt.keys {
				keys[k] = true
			}
			status, removed := WithoutEntries(pool, keys)
			if got := ips(removed); strings.Join(got, ",") != strings.Join(tt.wantRemoved, ",") {
				t.Errorf("removed %v, want %v", got, tt.wantRemoved)
			}
			if got := ips(status.IPAddresses); strings.Join(got, ",") != strings.Join(tt.wantKept, ",") {
				t.Errorf("kept %v, want %v", got, tt.wantKept)
			}
			if status.Usage.Used != len(tt.wantKept) || status.Usage.Total != 10 {
				t.Errorf("usage %+v, want used %d total 10", status.Usage, len(tt.wantKept))
			}
			if len(pool.Status.IPAddresses) != 3 {
				t.Error("WithoutEntries modified its input")
			}
		})
	}
}

func ips(entries []v1beta1.IPAddressState) []string {
	var out []string
	for _, e := range entries {
		out = append(out, e.IPAddress)
	}
	return out
}
