package cnihandler

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/agent/podstatus"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/cni/server"
)

// degradedPods serves Pods by name.
type degradedPods map[string]*corev1.Pod

func (p degradedPods) Get(_ context.Context, namespace, name, _ string) (*corev1.Pod, error) {
	if pod, ok := p[namespace+"/"+name]; ok {
		return pod, nil
	}
	return nil, errors.New("no such Pod")
}

// degradedLookup knows one NAD of type antrea, demo/vlan100.
type degradedLookup struct{}

func (degradedLookup) NAD(_ context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	if namespace+"/"+name != "demo/vlan100" {
		return nil, errors.New("no such NAD")
	}
	return &nadv1.NetworkAttachmentDefinition{Spec: nadv1.NetworkAttachmentDefinitionSpec{
		Config: `{"cniVersion": "0.3.0", "type": "antrea", "networkType": "vlan", "vlan": 100}`}}, nil
}

func (degradedLookup) IPPool(context.Context, string) (*v1beta1.IPPool, error) {
	return nil, errors.New("no such IPPool")
}

// degradedReporter keeps the errors reported on Pods.
type degradedReporter struct{ failed []string }

func (r *degradedReporter) AttachFailed(_ podstatus.PodRef, err error) {
	r.failed = append(r.failed, err.Error())
}
func (r *degradedReporter) Attached(podstatus.PodRef, string) {}
func (r *degradedReporter) DetachFailed(_ podstatus.PodRef, err error) {
	r.failed = append(r.failed, err.Error())
}
func (r *degradedReporter) QueueNetworkStatus(podstatus.PodRef, []nadv1.NetworkStatus) {}

// The agent runs degraded on an invalid antrea-agent.conf: Pods without networks pass, Pods with
// networks fail with the configuration error, field path included, in their Event and CNI error.
func TestDegradedAgentRefusesNetworksWithTheConfigurationError(t *testing.T) {
	configErr := errors.New("invalid antrea-agent.conf: ovsBridges: Forbidden: unknown field; it belongs under secondaryNetwork: write secondaryNetwork.ovsBridges")
	pods := degradedPods{
		"demo/plain": {ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "plain", UID: "u1"}},
		"demo/asks": {ObjectMeta: metav1.ObjectMeta{Namespace: "demo", Name: "asks", UID: "u2",
			Annotations: map[string]string{"k8s.v1.cni.cncf.io/networks": "vlan100"}}},
	}
	prev := `{"cniVersion": "1.0.0", "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/x"}], "ips": [{"address": "10.244.0.5/24", "interface": 0}]}`
	chained := `{"cniVersion": "1.0.0", "name": "k8s", "type": "antrea", "prevResult": ` + prev + `}`
	ipamOnly := `{"cniVersion": "1.0.0", "name": "m", "type": "macvlan", "ipam": {"type": "antrea", "ippools": ["p"]}}`
	cases := []struct {
		name     string
		pod      string
		config   string
		wantPass bool
	}{
		{"a Pod without networks passes with the previous result", "plain", chained, true},
		{"a Pod asking for a network of type antrea fails with the configuration error", "asks", chained, false},
		{"an IPAM-only ADD fails with the configuration error", "plain", ipamOnly, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := &degradedReporter{}
			h := New(Options{Pods: pods, Lookup: degradedLookup{}, Reporter: rep, ConfigError: configErr})
			res, err := h.Add(context.Background(), &server.Request{Command: "ADD", ContainerID: "c1",
				Netns: "/var/run/netns/x", IfName: "eth0", CNIVersion: "1.0.0", Config: []byte(tc.config),
				Args: "K8S_POD_NAMESPACE=demo;K8S_POD_NAME=" + tc.pod})
			if tc.wantPass {
				if err != nil || res == nil {
					t.Fatalf("Add = %v, %v; want the previous result", res, err)
				}
				if len(rep.failed) > 0 {
					t.Errorf("reported on the Pod: %v", rep.failed)
				}
				return
			}
			var cniErr *types.Error
			if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInvalidNetworkConfig ||
				!strings.Contains(cniErr.Msg, "secondaryNetwork.ovsBridges") {
				t.Fatalf("Add error = %#v, want code %d naming secondaryNetwork.ovsBridges", err, types.ErrInvalidNetworkConfig)
			}
			if tc.pod == "asks" && (len(rep.failed) != 1 || !strings.Contains(rep.failed[0], "ovsBridges")) {
				t.Errorf("Pod Events %v, want one with the configuration error", rep.failed)
			}
		})
	}
}
