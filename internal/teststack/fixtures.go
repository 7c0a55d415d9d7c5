package teststack

import (
	"encoding/json"
	"fmt"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// The objects a user writes, as the e2e tests and the benchmarks make them.

// VLANNetworkConfig is a NetworkAttachmentDefinition's spec.config for a VLAN network of ours (MTU
// 1500): vlan 0 leaves the VLAN to the pools, and pools, when given, are its IPAM.
func VLANNetworkConfig(vlan int, pools ...string) string {
	cfg := map[string]any{"cniVersion": "0.3.0", "type": "antrea", "networkType": "vlan", "mtu": 1500}
	if vlan != 0 {
		cfg["vlan"] = vlan
	}
	if len(pools) > 0 {
		cfg["ipam"] = map[string]any{"type": "antrea", "ippools": pools}
	}
	data, err := json.Marshal(cfg)
	if err != nil {
		panic(err) // strings, ints and slices of strings always marshal
	}
	return string(data)
}

// NAD is a NetworkAttachmentDefinition with the given spec.config.
func NAD(namespace, name, config string) *nadv1.NetworkAttachmentDefinition {
	return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: config}}
}

// Pool24 is an IPPool of addresses net.first to net.last of the /24 network net (as "198.18.100"),
// whose gateway is net.254, on the given VLAN.
func Pool24(name, net string, first, last, vlan int) *v1beta1.IPPool {
	return &v1beta1.IPPool{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1beta1.IPPoolSpec{
			IPRanges:   []v1beta1.IPRange{{Start: fmt.Sprintf("%s.%d", net, first), End: fmt.Sprintf("%s.%d", net, last)}},
			SubnetInfo: v1beta1.SubnetInfo{Gateway: net + ".254", PrefixLength: 24, VLAN: int32(vlan)},
		},
	}
}
