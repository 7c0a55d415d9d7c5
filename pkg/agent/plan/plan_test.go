package plan

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/cni/netconf"
)

type fakeLookup struct {
	nads  map[string]string // "ns/name" -> spec.config
	pools map[string]v1beta1.IPPoolSpec
}

func (f fakeLookup) NAD(_ context.Context, namespace, name string) (*nadv1.NetworkAttachmentDefinition, error) {
	cfg, ok := f.nads[namespace+"/"+name]
	if !ok {
		return nil, apierrors.NewNotFound(schema.GroupResource{Group: "k8s.cni.cncf.io", Resource: "network-attachment-definitions"}, name)
	}
	return &nadv1.NetworkAttachmentDefinition{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: nadv1.NetworkAttachmentDefinitionSpec{Config: cfg}}, nil
}

func (f fakeLookup) IPPool(_ context.Context, name string) (*v1beta1.IPPool, error) {
	spec, ok := f.pools[name]
	if !ok {
		return nil, apierrors.NewNotFound(v1beta1.Resource("ippools"), name)
	}
	return &v1beta1.IPPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}, nil
}

var lookup = fakeLookup{
	nads: map[string]string{
		"ns/vlan100":     `{"cniVersion":"0.3.0","type":"antrea","networkType":"vlan","ipam":{"type":"antrea","ippools":["pool100"]}}`,
		"ns/override":    `{"cniVersion":"0.3.0","type":"antrea","networkType":"vlan","vlan":300,"ipam":{"type":"antrea","ippools":["pool100"]}}`,
		"ns/untagged":    `{"cniVersion":"0.3.0","type":"antrea","networkType":"vlan","mtu":9000}`,
		"ns/conflict":    `{"cniVersion":"0.3.0","type":"antrea","networkType":"vlan","ipam":{"type":"antrea","ippools":["pool100","pool200v6"]}}`,
		"ns/missingpool": `{"cniVersion":"0.3.0","type":"antrea","networkType":"vlan","ipam":{"type":"antrea","ippools":["nope"]}}`,
		"ns/macvlan":     `{"cniVersion":"0.3.0","type":"macvlan","master":"eth0"}`,
		"other/shared":   `{"cniVersion":"0.3.0","type":"antrea","networkType":"vlan","vlan":42}`,
	},
	pools: map[string]v1beta1.IPPoolSpec{
		"pool100":   {IPRanges: []v1beta1.IPRange{{CIDR: "10.1.0.0/24"}}, SubnetInfo: v1beta1.SubnetInfo{Gateway: "10.1.0.1", PrefixLength: 24, VLAN: 100}},
		"pool200v6": {IPRanges: []v1beta1.IPRange{{CIDR: "fd00::/120"}}, SubnetInfo: v1beta1.SubnetInfo{Gateway: "fd00::1", PrefixLength: 64, VLAN: 200}},
	},
}

func TestForPod(t *testing.T) {
	tests := []struct {
		name       string
		annotation string
		wantErr    string
		check      func(t *testing.T, p *Plan)
	}{
		{name: "empty annotation is an empty plan", check: func(t *testing.T, p *Plan) {
			if len(p.Attachments)+len(p.Foreign) != 0 {
				t.Errorf("plan %+v", p)
			}
		}},
		{name: "pool VLAN applies when the NAD sets none", annotation: "vlan100", check: func(t *testing.T, p *Plan) {
			n := p.Attachments[0]
			if n.VLAN != 100 || n.IfName != "eth1" || n.MTU != 1500 || n.Network != "ns/vlan100" || n.Pools[0] != "pool100" {
				t.Errorf("network %+v", n)
			}
		}},
		{name: "NAD VLAN overrides the pool's", annotation: "override", check: func(t *testing.T, p *Plan) {
			if p.Attachments[0].VLAN != 300 {
				t.Errorf("VLAN %d, want 300", p.Attachments[0].VLAN)
			}
		}},
		{name: "network without ipam gets no pools", annotation: "untagged@data0", check: func(t *testing.T, p *Plan) {
			n := p.Attachments[0]
			if n.VLAN != 0 || len(n.Pools) != 0 || n.IfName != "data0" || n.MTU != 9000 {
				t.Errorf("network %+v", n)
			}
		}},
		{name: "other plugins' networks are left to them", annotation: "macvlan,vlan100", check: func(t *testing.T, p *Plan) {
			if len(p.Foreign) != 1 || p.Foreign[0] != "ns/macvlan" || len(p.Attachments) != 1 {
				t.Errorf("plan %+v", p)
			}
			if p.Attachments[0].IfName != "eth2" {
				t.Errorf("interface %s, want eth2 (names count every network)", p.Attachments[0].IfName)
			}
		}},
		{name: "cross-namespace network", annotation: `[{"name":"shared","namespace":"other","interface":"eth200"}]`, check: func(t *testing.T, p *Plan) {
			if n := p.Attachments[0]; n.Network != "other/shared" || n.VLAN != 42 || n.IfName != "eth200" {
				t.Errorf("network %+v", n)
			}
		}},
		{name: "bare static IP takes the pool's prefix", annotation: `[{"name":"vlan100","ips":["10.1.0.7"]}]`, check: func(t *testing.T, p *Plan) {
			if s := p.Attachments[0].Static; len(s) != 1 || s[0].Address != netip.MustParsePrefix("10.1.0.7/24") {
				t.Errorf("static %+v", s)
			}
		}},
		{name: "bare static IP outside the pools is refused", annotation: `[{"name":"vlan100","ips":["192.0.2.7"]}]`, wantErr: "ips[0] 192.0.2.7 has no prefix length"},
		{name: "unknown network", annotation: "nope", wantErr: "NetworkAttachmentDefinition ns/nope not found"},
		{name: "unknown pool", annotation: "missingpool", wantErr: `IPPool "nope" not found`},
		{name: "pools with different VLANs and no NAD VLAN", annotation: "conflict", wantErr: "conflicting VLANs"},
		{name: "malformed annotation", annotation: `[{"name": vlan100}]`, wantErr: "vlan100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := ForPod(context.Background(), "ns", tt.annotation, lookup)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, p)
		})
	}
}

func TestOursInNeedsNoPools(t *testing.T) {
	ours, err := OursIn(context.Background(), "ns", "missingpool,macvlan,nope,vlan100", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(ours, ",") != "ns/missingpool,ns/vlan100" {
		t.Errorf("ours = %v, want the two antrea networks (a missing pool or NAD is no reason to hide them)", ours)
	}
	if _, err := OursIn(context.Background(), "ns", `[{"name": x}]`, lookup); err == nil {
		t.Error("malformed annotation accepted")
	}
}

func TestTheWayInDecidesWhoWritesTheNetworkStatus(t *testing.T) {
	p, err := ForPod(t.Context(), "ns", "vlan100", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Attachments[0].WritesStatus {
		t.Error("chained: the agent must write the network-status")
	}
	network, _, err := netconf.ParseNAD("ns", "vlan100", lookup.nads["ns/vlan100"])
	if err != nil {
		t.Fatal(err)
	}
	a, err := ForDelegate(t.Context(), network, "net1", nil, nil, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if a.WritesStatus || a.IfName != "net1" || a.VLAN != 100 {
		t.Errorf("delegate attachment %+v: Multus writes the network-status", a)
	}
}
