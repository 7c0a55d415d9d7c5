package netconf

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

var configSeeds = []string{
	`{"cniVersion": "0.3.0", "type": "antrea", "networkType": "vlan", "mtu": 1500, "vlan": 100, "ipam": {"type": "antrea", "ippools": ["vlan100-ipv4", "vlan100-ipv6"]}}`,
	`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "mtu": 1280, "ipam": {"type": "antrea", "addresses": [{"address": "2001:db8::5/64", "gateway": "2001:db8::1"}], "routes": [{"dst": "::/0"}], "dns": {"nameservers": ["2001:db8::53"]}}}`,
	`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "sriov", "vlan": 4095, "mtu": 67}`,
	`{"cniVersion": "1.0.0", "type": "antrea", "vlanId": 5, "vlan": "5", "vlan": 6}`,
	`{"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "antrea", "prevResult": {"interfaces": [{"name": "eth0"}]}}`,
	`{"cniVersion": "1.0.0", "name": "mv", "type": "macvlan", "master": "eth0", "ipam": {"type": "antrea", "ippools": ["p"]}}`,
	`{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "runtimeConfig": {"mac": "02:00:00:00:00:01", "ips": ["10.0.0.2/24"]}}`,
	`{"type": "macvlan"}`,
	`{"plugins": []}`,
	`[]`,
	`{"type": "antrea", "mtu": 1e400}`,
	`{"cniVersion": "1.1.0", "type": "antrea", "networkType": null, "cni.dev/valid-attachments": [{"containerID": "c", "ifname": "eth0"}]}`,
	`{"cniVersion": "1.1.0", "type": "macvlan", "mtu": "x", "ipam": {"type": "antrea", "ippools": ["p"]}, "ipam": {}, "cni.dev/attachments": {}}`,
}

// checkNetwork asserts what the attach engine relies on in an accepted network.
func checkNetwork(t *testing.T, n *Network) {
	t.Helper()
	if n.MTU < MinMTU || n.MTU > MaxMTU {
		t.Fatalf("accepted MTU %d", n.MTU)
	}
	if n.VLAN < 0 || n.VLAN > MaxVLAN {
		t.Fatalf("accepted VLAN %d", n.VLAN)
	}
	if !slices.Contains(SupportedCNIVersions, n.CNIVersion) {
		t.Fatalf("accepted cniVersion %q", n.CNIVersion)
	}
	if n.IPAM == nil {
		return
	}
	if len(n.IPAM.IPPools) > MaxIPPools || len(n.IPAM.IPPools)+len(n.IPAM.Addresses) == 0 {
		t.Fatalf("accepted ipam %+v", n.IPAM)
	}
	seen := map[string]bool{}
	for _, p := range n.IPAM.IPPools {
		if len(validation.IsDNS1123Subdomain(p)) > 0 || seen[p] {
			t.Fatalf("accepted pool name %q", p)
		}
		seen[p] = true
	}
	for _, a := range n.IPAM.Addresses {
		if !a.Address.IsValid() || a.Address.Addr().Is4In6() {
			t.Fatalf("accepted address %v", a.Address)
		}
		if a.Address.Addr().Is6() && n.MTU < MinIPv6MTU {
			t.Fatalf("accepted MTU %d with IPv6 address %s", n.MTU, a.Address)
		}
		if a.Gateway.IsValid() && a.Gateway.Is4() != a.Address.Addr().Is4() {
			t.Fatalf("accepted gateway %s for %s", a.Gateway, a.Address)
		}
	}
	for _, r := range n.IPAM.Routes {
		if !r.Dst.IsValid() || r.Dst != r.Dst.Masked() {
			t.Fatalf("accepted route %v", r.Dst)
		}
	}
}

// FuzzParseNAD checks that ParseNAD never panics, that "not ours" never carries a network or an
// error, and that an accepted network satisfies every rule.
func FuzzParseNAD(f *testing.F) {
	for _, seed := range configSeeds {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, config string) {
		n, ours, err := ParseNAD("ns", "nad", config)
		switch {
		case err != nil:
			if n != nil {
				t.Fatalf("error %v with a network", err)
			}
		case !ours:
			if n != nil {
				t.Fatalf("not ours, yet a network %+v", n)
			}
		default:
			if n == nil {
				t.Fatalf("ours without a network or an error")
			}
			checkNetwork(t, n)
		}
	})
}

// FuzzParseStdin checks the stdin parser the same way, per mode.
func FuzzParseStdin(f *testing.F) {
	for _, seed := range configSeeds {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseStdin(data)
		if err != nil {
			return
		}
		switch s.Mode {
		case ModeChained:
			if s.Network != nil || s.IPAM != nil {
				t.Fatalf("chained with a network or ipam: %+v", s)
			}
		case ModeDelegate:
			if s.Network == nil {
				t.Fatalf("delegate without a network")
			}
			checkNetwork(t, s.Network)
			if s.IPAM != s.Network.IPAM {
				t.Fatalf("delegate IPAM differs from the network's")
			}
		case ModeIPAMOnly:
			if s.IPAM == nil || s.Network != nil {
				t.Fatalf("ipam-only: %+v", s)
			}
			checkNetwork(t, &Network{MTU: DefaultMTU, CNIVersion: s.CNIVersion, IPAM: s.IPAM})
		default:
			t.Fatalf("unknown mode %v", s.Mode)
		}
		if s.Runtime.MAC != nil && (len(s.Runtime.MAC) != 6 || s.Runtime.MAC[0]&1 != 0) {
			t.Fatalf("accepted runtime MAC %s", s.Runtime.MAC)
		}
	})
}
