package podvlanctl

import (
	"reflect"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/agent/veth"
	"github.com/podvlan/podvlan/pkg/config"
)

const agentConf = `featureGates: {SecondaryNetwork: true, AntreaIPAM: true}
ovsDatapathType: netdev
secondaryNetwork:
  ovsBridges:
  - bridgeName: br-secondary
    physicalInterfaces: [eth1, eth2, eth3]
`

func mustAgentConfig(t *testing.T) *config.Agent {
	t.Helper()
	a, err := config.LoadAgent([]byte(agentConf))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func agentPod(node string, ready bool, restarts int32) corev1.Pod {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	p := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "antrea-agent-x", Labels: map[string]string{"app": "antrea", "component": "antrea-agent"}},
		Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: AgentComponent, Image: "podvlan.local/antrea-agent:dev",
			Args: []string{"--config=/etc/antrea/antrea-agent.conf", "--metrics-bind-address=:10351"}}}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: status}},
			ContainerStatuses: []corev1.ContainerStatus{{Name: AgentComponent, Ready: ready, RestartCount: restarts}}}}
	if !ready {
		p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff", Message: "back-off"}
	}
	return p
}

const nodeMetrics = `# HELP antrea_agent_secondary_bridge_ready 1 when ...
# TYPE antrea_agent_secondary_bridge_ready gauge
antrea_agent_secondary_bridge_ready{bridge="br-secondary"} 1
antrea_agent_secondary_uplink_missing{bridge="br-secondary",interface="eth1"} 0
antrea_agent_secondary_uplink_missing{bridge="br-secondary",interface="eth2"} 1
antrea_agent_secondary_uplink_refused{bridge="br-secondary",interface="eth1"} 0
antrea_agent_secondary_uplink_refused{bridge="br-secondary",interface="eth2"} 0
podvlan_agent_cni_chain_missing 0
`

func TestBuildNodeReport(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}
	samples, err := ParseMetrics(nodeMetrics)
	if err != nil {
		t.Fatal(err)
	}
	withPort := pod("demo", "multi", "node-1", map[string]string{nadv1.NetworkAttachmentAnnot: "vlan100",
		nadv1.NetworkStatusAnnot: `[{"name":"demo/vlan100","interface":"eth1","ips":["198.18.100.2"]}]`})
	notAttached := pod("demo", "waiting", "node-1", map[string]string{nadv1.NetworkAttachmentAnnot: "vlan100"})
	holders := map[string][]Holder{"vlan100-ipv4": {{IP: "198.18.100.2", Namespace: "demo", Pod: "multi", UID: string(podUID), ContainerID: "c1", IfName: "eth1"}}}
	nodeEvents := []corev1.Event{
		event("default", "Node", "node-1", AgentComponent, "Warning", "SecondaryUplinkMissing", "uplink eth3 of bridge br-secondary does not exist; retrying every 10s", t0),
		event("default", "Node", "node-1", AgentComponent, "Normal", "SecondaryBridgeReady", "bridge br-secondary ready with uplinks [eth1]", t0.Add(-60e9)),
	}
	cases := []struct {
		name       string
		in         NodeInput
		bridge     string
		uplinks    []UplinkReport
		chain      string
		agentReady bool
		agentProb  string
		limit      string
		ports      int
	}{{
		name:       "metrics readable: bridge, uplinks and chain from the gauges; eth3 has no gauge yet so its Event tells",
		in:         NodeInput{Node: node, AgentPods: []corev1.Pod{agentPod("node-1", true, 0)}, AgentConfig: mustAgentConfig(t), Metrics: samples, Events: nodeEvents, Pods: []corev1.Pod{*withPort, *notAttached}, Holders: holders},
		bridge:     StateReady,
		uplinks:    []UplinkReport{{"eth1", StateAttached, "metrics"}, {"eth2", StateMissing, "metrics"}, {"eth3", StateMissing, "Event SecondaryUplinkMissing"}},
		chain:      StatePresent,
		agentReady: true,
		ports:      1,
	}, {
		name:       "metrics not reachable: states from the agent's Node Events, chain unknown and the limit said",
		in:         NodeInput{Node: node, AgentPods: []corev1.Pod{agentPod("node-1", true, 0)}, AgentConfig: mustAgentConfig(t), MetricsProblem: "bound to 127.0.0.1", Events: nodeEvents},
		bridge:     StateReady,
		uplinks:    []UplinkReport{{"eth1", StateAttached, "Event SecondaryBridgeReady"}, {"eth2", StateUnknown, ""}, {"eth3", StateMissing, "Event SecondaryUplinkMissing"}},
		chain:      StateUnknown,
		agentReady: true,
		limit:      "bound to 127.0.0.1",
	}, {
		name:      "crash-looping agent and a failed bridge",
		in:        NodeInput{Node: node, AgentPods: []corev1.Pod{agentPod("node-1", false, 7)}, AgentConfig: mustAgentConfig(t), Events: []corev1.Event{event("default", "Node", "node-1", AgentComponent, "Warning", "SecondaryBridgeFailed", "ovsdb unreachable", t0)}},
		bridge:    StateFailed,
		uplinks:   []UplinkReport{{"eth1", StateUnknown, ""}, {"eth2", StateUnknown, ""}, {"eth3", StateUnknown, ""}},
		chain:     StateUnknown,
		agentProb: "CrashLoopBackOff",
	}, {
		name:      "no agent Pod and no readable configuration",
		in:        NodeInput{Node: node, ConfigProblem: "cannot read ConfigMap kube-system/antrea-config: forbidden"},
		bridge:    StateUnknown,
		uplinks:   []UplinkReport{},
		chain:     StateUnknown,
		agentProb: "no antrea-agent Pod runs on this Node",
		limit:     "forbidden",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := BuildNodeReport(tc.in)
			if r.BridgeState != tc.bridge || r.Chain != tc.chain {
				t.Errorf("bridge %s chain %s, want %s %s", r.BridgeState, r.Chain, tc.bridge, tc.chain)
			}
			if !reflect.DeepEqual(r.Uplinks, tc.uplinks) {
				t.Errorf("uplinks %+v, want %+v", r.Uplinks, tc.uplinks)
			}
			if r.Agent.Ready != tc.agentReady || !strings.Contains(r.Agent.Problem, tc.agentProb) || tc.agentProb == "" && r.Agent.Problem != "" {
				t.Errorf("agent %+v, want ready=%v problem %q", r.Agent, tc.agentReady, tc.agentProb)
			}
			if tc.limit != "" && !strings.Contains(strings.Join(r.Limits, "\n"), tc.limit) {
				t.Errorf("limits %q, want one with %q", r.Limits, tc.limit)
			}
			if len(r.Ports) != tc.ports {
				t.Fatalf("ports %+v, want %d", r.Ports, tc.ports)
			}
			if tc.ports > 0 && (r.Ports[0].OVSPort != veth.HostName("c1", "eth1") || r.Ports[0].Pod != "demo/multi") {
				t.Errorf("port %+v, want demo/multi with its OVS port", r.Ports[0])
			}
		})
	}
}

func TestParseMetrics(t *testing.T) {
	samples, err := ParseMetrics(`# comment
a 1
b{x="1",y="with \"quote\" and , comma"} 2.5 1700000000
c{} +Inf
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Sample{{Name: "a", Value: 1}, {Name: "b", Labels: map[string]string{"x": "1", "y": `with "quote" and , comma`}, Value: 2.5}, {Name: "c", Labels: map[string]string{}, Value: samples[2].Value}}
	if !reflect.DeepEqual(samples, want) || samples[2].Value <= 1e308 {
		t.Errorf("samples %+v, want %+v", samples, want)
	}
	for _, bad := range []string{"novalue", `d{x="1} 1`, "e notanumber"} {
		if _, err := ParseMetrics(bad); err == nil {
			t.Errorf("ParseMetrics(%q) gave no error", bad)
		}
	}
}

func TestMetricsAddress(t *testing.T) {
	p := agentPod("n", true, 0)
	if got := MetricsAddress(&p); got != ":10351" {
		t.Errorf("MetricsAddress = %q, want :10351", got)
	}
	p.Spec.Containers[0].Args = []string{"--metrics-bind-address", "0.0.0.0:9000"}
	if got := MetricsAddress(&p); got != "0.0.0.0:9000" {
		t.Errorf("MetricsAddress = %q, want 0.0.0.0:9000", got)
	}
	p.Spec.Containers[0].Args = nil
	if got := MetricsAddress(&p); got != defaultMetricsAddress {
		t.Errorf("MetricsAddress = %q, want the agent's default %s", got, defaultMetricsAddress)
	}
}

func TestLatestDistinct(t *testing.T) {
	e := func(reason, msg string) EventSummary { return EventSummary{Reason: reason, Message: msg} }
	got := latestDistinct([]EventSummary{e("A", "x"), e("A", "x"), e("B", "x"), e("A", "y"), e("C", "z")}, 3)
	want := []EventSummary{e("A", "x"), e("B", "x"), e("A", "y")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("latestDistinct = %+v, want %+v", got, want)
	}
}
