package podvlanctl

import (
	"encoding/json"
	"fmt"
	"slices"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/cni/selection"
)

// ConditionSecondaryNetworksReady is the Pod condition the agent sets when it reports on a Pod's
// secondary networks; the views show it when present.
const ConditionSecondaryNetworksReady corev1.PodConditionType = "podvlan.io/SecondaryNetworksReady"

// PodInput is everything BuildPodReport looks at; the client layer fetches it.
type PodInput struct {
	Pod *corev1.Pod
	// NADs are the NetworkAttachmentDefinitions the annotation names, by "namespace/name"; a
	// missing key means not found.
	NADs map[string]*nadv1.NetworkAttachmentDefinition
	// Pools are the IPPools the networks reference, by name; missing means not found.
	Pools map[string]*v1beta1.IPPool
	// Holders are each pool's holders, by pool name.
	Holders map[string][]Holder
	// Events are the Events whose involved object is the Pod.
	Events []corev1.Event
}

// PodReport is the view of one Pod's secondary networks.
type PodReport struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Node      string `json:"node,omitempty"`
	Phase     string `json:"phase"`
	// Annotation is k8s.v1.cni.cncf.io/networks as written; empty when the Pod asks for none.
	Annotation string `json:"annotation,omitempty"`
	// Problem says why the annotation could not be read, if so.
	Problem    string               `json:"problem,omitempty"`
	Condition  *corev1.PodCondition `json:"condition,omitempty"`
	Interfaces []InterfaceReport    `json:"interfaces"`
	// LastEvent is the agent's newest Event about the Pod.
	LastEvent *EventSummary `json:"lastEvent,omitempty"`
}

// InterfaceReport is one secondary interface of a Pod.
type InterfaceReport struct {
	Interface string `json:"interface"`
	// Network is the NetworkAttachmentDefinition, namespace/name.
	Network string `json:"network"`
	// VLAN is the access VLAN the port gets (0: untagged); nil when it cannot be resolved.
	VLAN  *int     `json:"vlan,omitempty"`
	Pools []string `json:"pools,omitempty"`
	// Attached is true when the agent recorded the interface in network-status.
	Attached  bool     `json:"attached"`
	Addresses []string `json:"addresses,omitempty"`
	MAC       string   `json:"mac,omitempty"`
	// OVSPort is the port's name on the secondary bridge (the host end of the veth), derived from
	// the sandbox ID recorded with the interface's allocation; empty when unknown.
	OVSPort string `json:"ovsPort,omitempty"`
	// Problems are what stands in the way of this interface, each a sentence.
	Problems  []string      `json:"problems,omitempty"`
	LastEvent *EventSummary `json:"lastEvent,omitempty"`
}

// BuildPodReport builds the view of in.Pod's secondary interfaces.
func BuildPodReport(in PodInput) PodReport {
	pod := in.Pod
	r := PodReport{Namespace: pod.Namespace, Name: pod.Name, Node: pod.Spec.NodeName, Phase: string(pod.Status.Phase),
		Annotation: pod.Annotations[selection.AnnotationKey], Interfaces: []InterfaceReport{}}
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == ConditionSecondaryNetworksReady {
			c := pod.Status.Conditions[i]
			r.Condition = &c
		}
	}
	agentEvents := sortedEvents(in.Events, isAgentEvent)
	if len(agentEvents) > 0 {
		r.LastEvent = &agentEvents[0]
	}
	selected, err := selection.Parse(pod.Namespace, r.Annotation)
	if err != nil {
		r.Problem = err.Error()
		return r
	}
	statuses, statusErr := parseNetworkStatus(pod.Annotations[nadv1.NetworkStatusAnnot])
	for _, sel := range selected {
		ifr := InterfaceReport{Interface: sel.Interface, Network: sel.NetworkKey()}
		if statusErr != nil {
			ifr.Problems = append(ifr.Problems, statusErr.Error())
		}
		if st, ok := findStatus(statuses, sel.NetworkKey(), sel.Interface); ok {
			ifr.Attached, ifr.Addresses, ifr.MAC = true, st.IPs, st.Mac
		}
		ifr.Problems = append(ifr.Problems, resolveNetwork(&ifr, in, pod)...)
		for i := range agentEvents {
			if mentions(agentEvents[i].Message, sel.Interface) || mentions(agentEvents[i].Message, sel.NetworkKey()) {
				ifr.LastEvent = &agentEvents[i]
				break
			}
		}
		if ifr.LastEvent == nil {
			ifr.LastEvent = r.LastEvent
		}
		r.Interfaces = append(r.Interfaces, ifr)
	}
	return r
}

// resolveNetwork fills the VLAN, pools, OVS port and (when network-status has none) the addresses
// of ifr from the network's NetworkAttachmentDefinition and pools, returning the problems found.
func resolveNetwork(ifr *InterfaceReport, in PodInput, pod *corev1.Pod) []string {
	nad, ok := in.NADs[ifr.Network]
	if !ok || nad == nil {
		return []string{fmt.Sprintf("NetworkAttachmentDefinition %s not found", ifr.Network)}
	}
	network, ours, err := netconf.ParseNAD(nad.Namespace, nad.Name, nad.Spec.Config)
	if err != nil {
		return []string{err.Error()}
	}
	if !ours {
		return []string{fmt.Sprintf("NetworkAttachmentDefinition %s is not of type %q: another plugin attaches it", ifr.Network, netconf.PluginType)}
	}
	var problems []string
	var pools []netconf.Pool
	if network.IPAM != nil {
		ifr.Pools = slices.Clone(network.IPAM.IPPools)
	}
	for _, name := range ifr.Pools {
		ippool, ok := in.Pools[name]
		if !ok || ippool == nil {
			problems = append(problems, fmt.Sprintf("IPPool %s not found", name))
			continue
		}
		p, err := netconf.PoolFromIPPool(ippool)
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		pools = append(pools, p)
		for _, h := range in.Holders[name] {
			if !holdsFor(h, pod, ifr.Interface) {
				continue
			}
			if ifr.OVSPort == "" && h.ContainerID != "" {
				ifr.OVSPort = veth.HostName(h.ContainerID, h.IfName)
			}
			if !ifr.Attached && !slices.Contains(ifr.Addresses, h.IP) {
				ifr.Addresses = append(ifr.Addresses, h.IP)
			}
		}
	}
	// The network's own VLAN wins; without one, every pool must be known to tell.
	if vlan, err := netconf.ResolveVLAN(network.VLAN, pools); err != nil {
		problems = append(problems, err.Error())
	} else if network.VLAN != 0 || len(pools) == len(ifr.Pools) {
		ifr.VLAN = &vlan
	}
	return problems
}

// holdsFor reports whether h is the allocation of the Pod's interface ifName: same Pod and
// interface, and the same UID when both are known (a recreated Pod's leftovers are not its own).
func holdsFor(h Holder, pod *corev1.Pod, ifName string) bool {
	if h.Namespace != pod.Namespace || h.Pod != pod.Name || h.IfName != ifName {
		return false
	}
	return h.UID == "" || pod.UID == "" || h.UID == string(pod.UID)
}

// parseNetworkStatus reads the k8s.v1.cni.cncf.io/network-status annotation.
func parseNetworkStatus(value string) ([]nadv1.NetworkStatus, error) {
	if value == "" {
		return nil, nil
	}
	var statuses []nadv1.NetworkStatus
	if err := json.Unmarshal([]byte(value), &statuses); err != nil {
		return nil, fmt.Errorf("annotation %s is not a JSON list of network statuses: %w", nadv1.NetworkStatusAnnot, err)
	}
	return statuses, nil
}

// findStatus returns the network-status entry of the interface ifName of network.
func findStatus(statuses []nadv1.NetworkStatus, network, ifName string) (nadv1.NetworkStatus, bool) {
	for _, s := range statuses {
		if s.Interface == ifName && s.Name == network {
			return s, true
		}
	}
	return nadv1.NetworkStatus{}, false
}
