package netconf

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func TestResolveVLAN(t *testing.T) {
	tests := []struct {
		name    string
		nadVLAN int
		pools   []Pool
		want    int
		wantErr string
	}{
		{name: "no VLAN anywhere is untagged", pools: []Pool{{Name: "a"}}, want: 0},
		{name: "no pools and no VLAN is untagged", want: 0},
		{name: "the network's VLAN without pools", nadVLAN: 10, want: 10},
		{name: "the network's VLAN wins over the pool's", nadVLAN: 10, pools: []Pool{{Name: "a", VLAN: 100}}, want: 10},
		{name: "the network's VLAN settles conflicting pools", nadVLAN: 10, pools: []Pool{{Name: "a", VLAN: 100}, {Name: "b", VLAN: 200}}, want: 10},
		{name: "the pool's VLAN applies when the network sets none", pools: []Pool{{Name: "a", VLAN: 100}}, want: 100},
		{name: "pools agreeing on a VLAN", pools: []Pool{{Name: "a", VLAN: 100}, {Name: "b", IPv6: true, VLAN: 100}}, want: 100},
		{name: "an untagged pool does not conflict", pools: []Pool{{Name: "a"}, {Name: "b", IPv6: true, VLAN: 200}}, want: 200},
		{name: "conflicting pools without a network VLAN",
			pools:   []Pool{{Name: "v4", VLAN: 100}, {Name: "v6", IPv6: true, VLAN: 200}},
			wantErr: `IPPools "v4" (vlan 100) and "v6" (vlan 200) have conflicting VLANs; set "vlan" in the network configuration to choose one`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ResolveVLAN(tt.nadVLAN, tt.pools)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ResolveVLAN() = %d, %v, want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveVLAN() = %d, %v, want %d", got, err, tt.want)
			}
		})
	}
}

func TestCheckPoolFamilies(t *testing.T) {
	if err := CheckPoolFamilies([]Pool{{Name: "a"}, {Name: "b", IPv6: true}}); err != nil {
		t.Fatalf("one pool per family: %v", err)
	}
	err := CheckPoolFamilies([]Pool{{Name: "a"}, {Name: "b"}})
	want := `IPPools "a" and "b" are both IPv4; list at most one IPv4 and one IPv6 pool`
	if err == nil || err.Error() != want {
		t.Fatalf("two IPv4 pools: %v, want %s", err, want)
	}
	err = CheckPoolFamilies([]Pool{{Name: "a", IPv6: true}, {Name: "b", IPv6: true}})
	want = `IPPools "a" and "b" are both IPv6; list at most one IPv4 and one IPv6 pool`
	if err == nil || err.Error() != want {
		t.Fatalf("two IPv6 pools: %v, want %s", err, want)
	}
}

func TestCheckMTU(t *testing.T) {
	tests := []struct {
		name    string
		mtu     int
		pools   []Pool
		wantErr string
	}{
		{name: "small MTU with an IPv4 pool", mtu: 576, pools: []Pool{{Name: "a"}}},
		{name: "1280 with an IPv6 pool", mtu: 1280, pools: []Pool{{Name: "a", IPv6: true}}},
		{name: "1279 with an IPv6 pool", mtu: 1279, pools: []Pool{{Name: "a"}, {Name: "b", IPv6: true}},
			wantErr: `must be at least 1280, the IPv6 minimum, because IPPool "b" is IPv6`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckMTU(tt.mtu, tt.pools)
			if (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr)) {
				t.Fatalf("CheckMTU() = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestResolveWithPools(t *testing.T) {
	nad := func(config string) *Network {
		t.Helper()
		n, _, err := ParseNAD("ns", "nad", config)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	const twoPools = `"ipam": {"type": "antrea", "ippools": ["v4", "v6"]}`
	tests := []struct {
		name    string
		network *Network
		pools   []Pool
		want    int
		wantErr string
	}{
		{name: "the pools' VLAN is used",
			network: nad(`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", ` + twoPools + `}`),
			pools:   []Pool{{Name: "v4", VLAN: 100}, {Name: "v6", IPv6: true, VLAN: 100}}, want: 100},
		{name: "no ipam, no pools",
			network: nad(`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "vlan": 3}`), want: 3},
		{name: "conflicting VLANs name the NetworkAttachmentDefinition and both pools",
			network: nad(`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", ` + twoPools + `}`),
			pools:   []Pool{{Name: "v4", VLAN: 100}, {Name: "v6", IPv6: true, VLAN: 200}},
			wantErr: `NetworkAttachmentDefinition ns/nad: spec.config.ipam.ippools: Invalid value: ["v4","v6"]: IPPools "v4" (vlan 100) and "v6" (vlan 200) have conflicting VLANs; set "vlan" in the network configuration to choose one`},
		{name: "two pools of one family",
			network: nad(`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", ` + twoPools + `}`),
			pools:   []Pool{{Name: "v4"}, {Name: "v6"}},
			wantErr: `NetworkAttachmentDefinition ns/nad: spec.config.ipam.ippools: Invalid value: ["v4","v6"]: IPPools "v4" and "v6" are both IPv4; list at most one IPv4 and one IPv6 pool`},
		{name: "an MTU too small for the IPv6 pool",
			network: nad(`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "mtu": 1200, ` + twoPools + `}`),
			pools:   []Pool{{Name: "v4"}, {Name: "v6", IPv6: true}},
			wantErr: `NetworkAttachmentDefinition ns/nad: spec.config.mtu: Invalid value: 1200: must be at least 1280, the IPv6 minimum, because IPPool "v6" is IPv6`},
		{name: "pools that do not match ippools are a caller bug",
			network: nad(`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", ` + twoPools + `}`),
			pools:   []Pool{{Name: "v6", IPv6: true}, {Name: "v4"}},
			wantErr: `NetworkAttachmentDefinition ns/nad: spec.config.ipam.ippools: Internal error: pools [v6 v4] passed for ippools [v4 v6]`},
		{name: "a network from stdin is named by its name",
			network: &Network{Name: "vlan100", MTU: 1500, IPAM: &IPAM{IPPools: []string{"a", "b"}}},
			pools:   []Pool{{Name: "a", VLAN: 1}, {Name: "b", IPv6: true, VLAN: 2}},
			wantErr: `network "vlan100": ipam.ippools: Invalid value: ["a","b"]: IPPools "a" (vlan 1) and "b" (vlan 2) have conflicting VLANs; set "vlan" in the network configuration to choose one`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.network.ResolveWithPools(tt.pools)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ResolveWithPools() = %d, %v\nwant error\n  %s", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ResolveWithPools() = %d, %v, want %d", got, err, tt.want)
			}
		})
	}
}

func TestPoolFromIPPool(t *testing.T) {
	mk := func(gw string, vlan int32) *v1beta1.IPPool {
		return &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: "p"},
			Spec: v1beta1.IPPoolSpec{SubnetInfo: v1beta1.SubnetInfo{Gateway: gw, PrefixLength: 24, VLAN: vlan}}}
	}
	if got, err := PoolFromIPPool(mk("10.0.0.1", 100)); err != nil || got != (Pool{Name: "p", VLAN: 100}) {
		t.Fatalf("IPv4 pool = %+v, %v", got, err)
	}
	if got, err := PoolFromIPPool(mk("fd00::1", 0)); err != nil || got != (Pool{Name: "p", IPv6: true}) {
		t.Fatalf("IPv6 pool = %+v, %v", got, err)
	}
	_, err := PoolFromIPPool(mk("bad", 0))
	if err == nil || err.Error() != `IPPool p: spec.subnetInfo.gateway "bad" is not an IP address` {
		t.Fatalf("bad gateway: %v", err)
	}
}
