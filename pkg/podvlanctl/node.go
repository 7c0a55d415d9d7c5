package podvlanctl

import (
	"fmt"
	"slices"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/config"
)

// Event reasons of the agent about its Node (pkg/agent/bridge), repeated here so that the plugin
// does not link the agent.
const (
	reasonBridgeFailed  = "SecondaryBridgeFailed"
	reasonUplinkMissing = "SecondaryUplinkMissing"
	reasonUplinkRefused = "SecondaryUplinkRefused"
	reasonBridgeReady   = "SecondaryBridgeReady"
)

// States shown for the bridge, uplinks and chain. Unknown means nothing readable through the API
// said; the report's Limits explain why.
const (
	StateReady    = "ready"
	StateFailed   = "failed"
	StateAttached = "attached"
	StateMissing  = "missing"
	StateRefused  = "refused"
	StatePresent  = "present"
	StateUnknown  = "unknown"
)

// maxNodeEvents bounds the Events a Node report lists.
const maxNodeEvents = 5

// NodeInput is everything BuildNodeReport looks at.
type NodeInput struct {
	Node *corev1.Node
	// AgentPods are the antrea-agent Pods scheduled on the Node (normally one).
	AgentPods []corev1.Pod
	// AgentConfig is antrea-agent.conf; nil when it could not be read (ConfigProblem says why).
	AgentConfig   *config.Agent
	ConfigProblem string
	// Events are the Events whose involved object is the Node.
	Events []corev1.Event
	// Metrics are the agent's metrics; nil when they could not be read (MetricsProblem says why).
	Metrics        []Sample
	MetricsProblem string
	// Pods are the Pods scheduled on the Node.
	Pods []corev1.Pod
	// Holders are every pool's holders, by pool name, for the OVS port names.
	Holders map[string][]Holder
	// Problems are other things the client could not read, shown as limits.
	Problems []string
}

// NodeReport is the view of one Node's secondary bridge and agent.
type NodeReport struct {
	Node        string         `json:"node"`
	Bridge      string         `json:"bridge,omitempty"`
	Datapath    string         `json:"datapath,omitempty"`
	BridgeState string         `json:"bridgeState"`
	Uplinks     []UplinkReport `json:"uplinks"`
	// Chain says whether antrea is chained in the Node's primary CNI configuration.
	Chain  string         `json:"chain"`
	Agent  AgentHealth    `json:"agent"`
	Ports  []PortReport   `json:"ports"`
	Events []EventSummary `json:"events,omitempty"`
	// Limits are what could not be read, and so what the unknown states mean.
	Limits []string `json:"limits,omitempty"`
}

// UplinkReport is one configured uplink of the secondary bridge.
type UplinkReport struct {
	Name  string `json:"name"`
	State string `json:"state"`
	// From says which source told the state: metrics or an Event.
	From string `json:"from,omitempty"`
}

// AgentHealth is what the API server knows of the agent Pod.
type AgentHealth struct {
	Pod      string    `json:"pod,omitempty"`
	Phase    string    `json:"phase,omitempty"`
	Ready    bool      `json:"ready"`
	Restarts int32     `json:"restarts"`
	Image    string    `json:"image,omitempty"`
	Since    time.Time `json:"since,omitzero"`
	// Problem is set when the agent is not running and ready, saying what the Pod shows.
	Problem string `json:"problem,omitempty"`
}

// PortReport is one secondary interface of a Pod on the Node: one access port on the bridge.
type PortReport struct {
	Pod       string   `json:"pod"`
	Interface string   `json:"interface"`
	Network   string   `json:"network"`
	Addresses []string `json:"addresses,omitempty"`
	OVSPort   string   `json:"ovsPort,omitempty"`
}

// BuildNodeReport builds the view of in.Node.
func BuildNodeReport(in NodeInput) NodeReport {
	r := NodeReport{Node: in.Node.Name, BridgeState: StateUnknown, Chain: StateUnknown, Uplinks: []UplinkReport{}, Ports: []PortReport{}}
	var uplinks []string
	if in.AgentConfig != nil {
		r.Datapath = string(in.AgentConfig.OVSDatapathType)
		if br, ok := in.AgentConfig.Bridge(); ok {
			r.Bridge, uplinks = br.BridgeName, br.PhysicalInterfaces
		} else {
			r.Limits = append(r.Limits, "antrea-agent.conf configures no secondary bridge (secondaryNetwork.ovsBridges)")
		}
	} else if in.ConfigProblem != "" {
		r.Limits = append(r.Limits, in.ConfigProblem)
	}
	r.Limits = append(r.Limits, in.Problems...)
	if in.Metrics == nil && in.MetricsProblem != "" {
		r.Limits = append(r.Limits, "agent metrics: "+in.MetricsProblem)
	}
	r.Agent = agentHealth(in.AgentPods)
	agentEvents := sortedEvents(in.Events, isAgentEvent)
	r.Events = latestDistinct(agentEvents, maxNodeEvents)

	r.BridgeState = bridgeState(r.Bridge, in.Metrics, agentEvents)
	for _, name := range uplinks {
		r.Uplinks = append(r.Uplinks, uplinkState(r.Bridge, name, in.Metrics, agentEvents))
	}
	r.Chain = chainState(in.Metrics)
	if r.Chain == StateUnknown && in.Metrics != nil {
		r.Limits = append(r.Limits, "the agent exports no chain metric: whether antrea is chained is not known")
	}
	r.Ports = nodePorts(in.Pods, in.Holders)
	return r
}

// latestDistinct returns the first n events (newest first) that differ in reason or message: each
// agent restart repeats the same Events.
func latestDistinct(events []EventSummary, n int) []EventSummary {
	var out []EventSummary
	for _, e := range events {
		if len(out) == n {
			break
		}
		if !slices.ContainsFunc(out, func(o EventSummary) bool { return o.Reason == e.Reason && o.Message == e.Message }) {
			out = append(out, e)
		}
	}
	return out
}

// agentHealth summarizes the agent Pods of a Node.
func agentHealth(pods []corev1.Pod) AgentHealth {
	if len(pods) == 0 {
		return AgentHealth{Problem: "no antrea-agent Pod runs on this Node (a taint the DaemonSet does not tolerate, a nodeSelector, or the DaemonSet is missing)"}
	}
	// A Pod being replaced and its successor: report the newest.
	p := slices.MaxFunc(pods, func(a, b corev1.Pod) int { return a.CreationTimestamp.Compare(b.CreationTimestamp.Time) })
	h := AgentHealth{Pod: p.Namespace + "/" + p.Name, Phase: string(p.Status.Phase)}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			h.Ready = c.Status == corev1.ConditionTrue
			h.Since = c.LastTransitionTime.Time
		}
	}
	for _, c := range p.Spec.Containers {
		if c.Name == AgentComponent {
			h.Image = c.Image
		}
	}
	var problems []string
	for _, cs := range p.Status.ContainerStatuses {
		h.Restarts += cs.RestartCount
		if w := cs.State.Waiting; w != nil {
			problems = append(problems, fmt.Sprintf("container %s waiting: %s %s", cs.Name, w.Reason, w.Message))
		}
		if t := cs.LastTerminationState.Terminated; t != nil && !cs.Ready {
			problems = append(problems, fmt.Sprintf("container %s last exited %d (%s)", cs.Name, t.ExitCode, t.Reason))
		}
	}
	if !h.Ready && len(problems) == 0 {
		problems = append(problems, "the Pod is not Ready")
	}
	if !h.Ready {
		h.Problem = strings.Join(problems, "; ")
	}
	return h
}

// bridgeState is the secondary bridge's state from the metric, else from the newest Event.
func bridgeState(bridge string, metrics []Sample, events []EventSummary) string {
	if bridge == "" {
		return StateUnknown
	}
	for _, s := range metricNamed(metrics, "secondary_bridge_ready") {
		if s.Labels["bridge"] == bridge {
			if s.Value == 1 {
				return StateReady
			}
			return StateFailed
		}
	}
	for _, e := range events {
		switch e.Reason {
		case reasonBridgeReady, reasonUplinkMissing, reasonUplinkRefused:
			// The agent reports uplink problems only once the bridge itself is ensured.
			return StateReady
		case reasonBridgeFailed:
			return StateFailed
		}
	}
	return StateUnknown
}

// uplinkState is one uplink's state from the metrics, else from the newest Event about uplinks.
func uplinkState(bridge, name string, metrics []Sample, events []EventSummary) UplinkReport {
	flag := func(suffix string) (float64, bool) {
		for _, s := range metricNamed(metrics, suffix) {
			if s.Labels["bridge"] == bridge && s.Labels["interface"] == name {
				return s.Value, true
			}
		}
		return 0, false
	}
	missing, okMissing := flag("secondary_uplink_missing")
	refused, okRefused := flag("secondary_uplink_refused")
	switch {
	case okMissing && missing == 1:
		return UplinkReport{Name: name, State: StateMissing, From: "metrics"}
	case okRefused && refused == 1:
		return UplinkReport{Name: name, State: StateRefused, From: "metrics"}
	case okMissing && okRefused:
		return UplinkReport{Name: name, State: StateAttached, From: "metrics"}
	}
	for _, e := range events {
		if e.Reason == reasonBridgeReady && mentions(e.Message, name) {
			return UplinkReport{Name: name, State: StateAttached, From: "Event " + e.Reason}
		}
		if e.Reason == reasonUplinkMissing && mentions(e.Message, name) {
			return UplinkReport{Name: name, State: StateMissing, From: "Event " + e.Reason}
		}
		if e.Reason == reasonUplinkRefused && mentions(e.Message, name) {
			return UplinkReport{Name: name, State: StateRefused, From: "Event " + e.Reason}
		}
	}
	return UplinkReport{Name: name, State: StateUnknown}
}

// chainState reads a metric about the CNI chain when the agent exports one: a gauge whose name
// says "chain" and "missing" is 1 while antrea is not chained; one saying "chained" or "present"
// is 1 while it is.
func chainState(metrics []Sample) string {
	for _, s := range metrics {
		if !strings.Contains(s.Name, "chain") || strings.HasSuffix(s.Name, "_total") {
			continue
		}
		switch {
		case strings.Contains(s.Name, "missing"):
			if s.Value == 1 {
				return StateMissing
			}
			return StatePresent
		case strings.Contains(s.Name, "chained") || strings.Contains(s.Name, "present"):
			if s.Value == 1 {
				return StatePresent
			}
			return StateMissing
		}
	}
	return StateUnknown
}

// nodePorts lists the secondary interfaces the agent recorded in the network-status of the Node's
// Pods, sorted by Pod and interface.
func nodePorts(pods []corev1.Pod, holders map[string][]Holder) []PortReport {
	ports := []PortReport{}
	for i := range pods {
		pod := &pods[i]
		selected, err := selection.Parse(pod.Namespace, pod.Annotations[selection.AnnotationKey])
		if err != nil || len(selected) == 0 {
			continue
		}
		statuses, _ := parseNetworkStatus(pod.Annotations[nadv1.NetworkStatusAnnot])
		for _, sel := range selected {
			st, ok := findStatus(statuses, sel.NetworkKey(), sel.Interface)
			if !ok {
				continue
			}
			p := PortReport{Pod: pod.Namespace + "/" + pod.Name, Interface: sel.Interface, Network: sel.NetworkKey(), Addresses: st.IPs}
			p.OVSPort = portName(pod, sel.Interface, holders)
			ports = append(ports, p)
		}
	}
	slices.SortFunc(ports, func(a, b PortReport) int {
		return strings.Compare(a.Pod+"\x00"+a.Interface, b.Pod+"\x00"+b.Interface)
	})
	return ports
}

// portName derives the OVS port of the Pod's interface from its allocation's sandbox ID.
func portName(pod *corev1.Pod, ifName string, holders map[string][]Holder) string {
	for _, hs := range holders {
		for _, h := range hs {
			if holdsFor(h, pod, ifName) && h.ContainerID != "" {
				return veth.HostName(h.ContainerID, h.IfName)
			}
		}
	}
	return ""
}
