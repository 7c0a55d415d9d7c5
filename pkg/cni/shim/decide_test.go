package shim

import (
	"testing"
)

func TestAnswerWithoutAgent(t *testing.T) {
	const prev = `"prevResult":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0"}],"ips":[{"address":"10.244.0.5/24","interface":0}]}`
	chained := func(runtimeConfig string) string {
		s := `{"cniVersion":"1.0.0","name":"cbr0","type":"antrea",` + prev
		if runtimeConfig != "" {
			s += `,"runtimeConfig":` + runtimeConfig
		}
		return s + "}"
	}
	tests := []struct {
		name    string
		command string
		stdin   string
		want    bool
	}{
		{name: "ADD of a Pod without the networks annotation is answered alone", command: commandAdd,
			stdin: chained(`{"io.kubernetes.cri.pod-annotations":{"app":"web"}}`), want: true},
		{name: "CHECK of a Pod without the networks annotation is answered alone", command: commandCheck,
			stdin: chained(`{"io.kubernetes.cri.pod-annotations":{}}`), want: true},
		{name: "an empty networks annotation asks for nothing", command: commandAdd,
			stdin: chained(`{"io.kubernetes.cri.pod-annotations":{"k8s.v1.cni.cncf.io/networks":"  "}}`), want: true},
		{name: "a Pod with the networks annotation goes to the agent", command: commandAdd,
			stdin: chained(`{"io.kubernetes.cri.pod-annotations":{"k8s.v1.cni.cncf.io/networks":"vlan100"}}`)},
		{name: "a runtime that passes no annotations gets the agent's answer", command: commandAdd,
			stdin: chained("")},
		{name: "a runtimeConfig without the capability gets the agent's answer", command: commandAdd,
			stdin: chained(`{"portMappings":[]}`)},
		{name: "null annotations are no annotations", command: commandAdd,
			stdin: chained(`{"io.kubernetes.cri.pod-annotations":null}`)},
		{name: "annotations that are not strings go to the agent", command: commandAdd,
			stdin: chained(`{"io.kubernetes.cri.pod-annotations":{"a":1}}`)},
		{name: "DEL always goes to the agent", command: commandDel,
			stdin: chained(`{"io.kubernetes.cri.pod-annotations":{}}`)},
		{name: "GC always goes to the agent", command: commandGC,
			stdin: chained(`{"io.kubernetes.cri.pod-annotations":{}}`)},
		{name: "a chained ADD without prevResult goes to the agent", command: commandAdd,
			stdin: `{"cniVersion":"1.0.0","type":"antrea","runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`},
		{name: "a Multus delegate goes to the agent", command: commandAdd,
			stdin: `{"cniVersion":"1.0.0","type":"antrea","networkType":"vlan",` + prev + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`},
		{name: "an IPAM-only configuration goes to the agent", command: commandAdd,
			stdin: `{"cniVersion":"1.0.0","type":"macvlan","ipam":{"type":"antrea"},` + prev + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`},
		{name: "a chained entry with ipam goes to the agent, which refuses it", command: commandAdd,
			stdin: `{"cniVersion":"1.0.0","type":"antrea","ipam":{"type":"antrea"},` + prev + `,"runtimeConfig":{"io.kubernetes.cri.pod-annotations":{}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := parseConfig([]byte(tt.stdin))
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			if got := answerWithoutAgent(tt.command, conf); got != tt.want {
				t.Errorf("answerWithoutAgent(%s) = %v, want %v", tt.command, got, tt.want)
			}
		})
	}
}

func TestPodFromArgs(t *testing.T) {
	tests := []struct {
		name string
		args string
		want podIdentity
	}{
		{name: "containerd's arguments", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=4f1a;K8S_POD_UID=0c2d",
			want: podIdentity{Namespace: "ns1", Name: "web-0", UID: "0c2d"}},
		{name: "no UID", args: "K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0", want: podIdentity{Namespace: "ns1", Name: "web-0"}},
		{name: "malformed pairs are skipped", args: "garbage;K8S_POD_NAME=a=b;;", want: podIdentity{Name: "a=b"}},
		{name: "empty", args: "", want: podIdentity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := podFromArgs(tt.args); got != tt.want {
				t.Errorf("podFromArgs(%q) = %+v, want %+v", tt.args, got, tt.want)
			}
		})
	}
}
