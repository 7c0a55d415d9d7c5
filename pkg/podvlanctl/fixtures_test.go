package podvlanctl

import (
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// Fixtures shaped like docs/examples: demo/vlan100 (VLAN from its pool), networks/vlan200 (VLAN
// in the NAD), demo/vlan100-l2 (no IPAM).

var t0 = time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

func nad(namespace, name, config string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
}

var (
	nadVLAN100   = nad("demo", "vlan100", `{"cniVersion":"1.0.0","type":"antrea","networkType":"vlan","ipam":{"type":"antrea","ippools":["vlan100-ipv4"]}}`)
	nadVLAN200   = nad("networks", "vlan200", `{"cniVersion":"1.0.0","type":"antrea","networkType":"vlan","vlan":200,"ipam":{"type":"antrea","ippools":["vlan200-ipv4"]}}`)
	nadL2        = nad("demo", "vlan100-l2", `{"cniVersion":"1.0.0","type":"antrea","networkType":"vlan","vlan":100}`)
	nadMacvlan   = nad("demo", "other", `{"cniVersion":"1.0.0","type":"macvlan","master":"eth0"}`)
	allTestNADs  = []*nadv1.NetworkAttachmentDefinition{nadVLAN100, nadVLAN200, nadL2, nadMacvlan}
	podUID       = types.UID("uid-1")
	containerID1 = "c0ffee0000000000000000000000000000000000000000000000000000000001"
)

func pool(name, gateway string, vlan int32, total int, addrs ...v1beta1.IPAddressState) *v1beta1.IPPool {
	return &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.IPPoolSpec{IPRanges: []v1beta1.IPRange{{CIDR: gateway[:len(gateway)-1] + "0/26"}},
			SubnetInfo: v1beta1.SubnetInfo{Gateway: gateway, PrefixLength: 24, VLAN: vlan}},
		Status: v1beta1.IPPoolStatus{IPAddresses: addrs, Usage: v1beta1.IPPoolUsage{Total: total, Used: len(addrs)}}}
}

func held(ip, namespace, podName, uid, containerID, ifName string) v1beta1.IPAddressState {
	return v1beta1.IPAddressState{IPAddress: ip, Phase: v1beta1.IPAddressPhaseAllocated,
		Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: podName, Namespace: namespace, UID: uid, ContainerID: containerID, IFName: ifName}}}
}

func pod(namespace, name, node string, annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name, UID: podUID, Annotations: annotations},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
}

func event(namespace, kind, name, component, typ, reason, message string, at time.Time) corev1.Event {
	return corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name + "." + reason + at.Format("150405")},
		InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: namespace, Name: name},
		Source:         corev1.EventSource{Component: component}, Type: typ, Reason: reason, Message: message,
		LastTimestamp: metav1.NewTime(at), Count: 1}
}

func ptr[T any](v T) *T { return &v }

func typesUID(s string) types.UID { return types.UID(s) }
