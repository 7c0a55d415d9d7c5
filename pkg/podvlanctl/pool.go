package podvlanctl

import (
	"cmp"
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// NearExhaustion is the share of a pool's addresses in use from which doctor warns.
const NearExhaustion = 0.9

// PoolInput is everything BuildPoolReport looks at.
type PoolInput struct {
	Pool    *v1beta1.IPPool
	Holders []Holder
	// Pods are the live Pods of the namespaces that hold addresses, by "namespace/name"; a holder
	// whose Pod is missing here is a leak. Nil means the Pods could not be read, and no holder is
	// then called a leak.
	Pods map[string]*corev1.Pod
}

// PoolReport is the view of one IPPool.
type PoolReport struct {
	Name   string   `json:"name"`
	VLAN   int32    `json:"vlan"`
	Subnet string   `json:"subnet"`
	Ranges []string `json:"ranges"`
	Total  int      `json:"total"`
	Used   int      `json:"used"`
	// UsedFraction is Used/Total, 0 for an empty pool.
	UsedFraction float64        `json:"usedFraction"`
	Holders      []HolderReport `json:"holders"`
	PerNode      []NodeShare    `json:"perNode"`
	// Leaks counts holders whose Pod no longer exists; the controller releases them after its
	// grace period (antrea-controller.conf ipPoolGC).
	Leaks int `json:"leaks"`
	// LeaksUnknown is true when the Pods could not be read.
	LeaksUnknown bool `json:"leaksUnknown,omitempty"`
}

// HolderReport is a holder with what the view found out about it.
type HolderReport struct {
	Holder
	// Leak says why the holder is a leak; empty when its Pod is alive.
	Leak string `json:"leak,omitempty"`
}

// NodeShare is how many addresses of a pool the Pods of one Node hold.
type NodeShare struct {
	// Node is empty for holders whose Node is unknown (their Pod is gone or not scheduled).
	Node  string `json:"node"`
	Count int    `json:"count"`
}

// BuildPoolReport builds the view of in.Pool.
func BuildPoolReport(in PoolInput) PoolReport {
	p := in.Pool
	r := PoolReport{Name: p.Name, VLAN: p.Spec.SubnetInfo.VLAN,
		Subnet: fmt.Sprintf("%s/%d", p.Spec.SubnetInfo.Gateway, p.Spec.SubnetInfo.PrefixLength),
		Total:  p.Status.Usage.Total, Used: len(in.Holders), Holders: []HolderReport{}, PerNode: []NodeShare{},
		LeaksUnknown: in.Pods == nil}
	for _, rg := range p.Spec.IPRanges {
		if rg.CIDR != "" {
			r.Ranges = append(r.Ranges, rg.CIDR)
		} else {
			r.Ranges = append(r.Ranges, rg.Start+"-"+rg.End)
		}
	}
	if r.Total > 0 {
		r.UsedFraction = float64(r.Used) / float64(r.Total)
	}
	perNode := map[string]int{}
	for _, h := range in.Holders {
		hr := HolderReport{Holder: h}
		if in.Pods != nil {
			hr.Leak = leakReason(h, in.Pods)
		}
		if hr.Leak != "" {
			r.Leaks++
		}
		if hr.Node == "" && hr.Leak == "" {
			if pod := in.Pods[h.Namespace+"/"+h.Pod]; pod != nil {
				hr.Node = pod.Spec.NodeName
			}
		}
		perNode[hr.Node]++
		r.Holders = append(r.Holders, hr)
	}
	for node, n := range perNode {
		r.PerNode = append(r.PerNode, NodeShare{Node: node, Count: n})
	}
	slices.SortFunc(r.PerNode, func(a, b NodeShare) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Node, b.Node))
	})
	return r
}

// leakReason says why h no longer has a live owner, or "" when it has one.
func leakReason(h Holder, pods map[string]*corev1.Pod) string {
	if h.Pod == "" {
		return ""
	}
	pod, ok := pods[h.Namespace+"/"+h.Pod]
	switch {
	case !ok || pod == nil:
		return fmt.Sprintf("Pod %s/%s no longer exists", h.Namespace, h.Pod)
	case h.UID != "" && string(pod.UID) != h.UID:
		return fmt.Sprintf("Pod %s/%s was recreated (UID %s, the allocation is for %s)", h.Namespace, h.Pod, pod.UID, h.UID)
	case pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed:
		return fmt.Sprintf("Pod %s/%s has terminated (%s)", h.Namespace, h.Pod, pod.Status.Phase)
	}
	return ""
}
