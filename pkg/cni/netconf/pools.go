package netconf

import (
	"fmt"
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// Pool is what the network rules need to know of a referenced IPPool.
type Pool struct {
	// Name of the IPPool.
	Name string
	// IPv6 is the pool's address family.
	IPv6 bool
	// VLAN is the pool's subnetInfo.vlan; 0 means none.
	VLAN int
}

// PoolFromIPPool extracts the Pool of an IPPool; its family is its gateway's.
func PoolFromIPPool(p *v1beta1.IPPool) (Pool, error) {
	gw, err := netip.ParseAddr(p.Spec.SubnetInfo.Gateway)
	if err != nil {
		return Pool{}, fmt.Errorf("IPPool %s: spec.subnetInfo.gateway %q is not an IP address", p.Name, p.Spec.SubnetInfo.Gateway)
	}
	return Pool{Name: p.Name, IPv6: gw.Unmap().Is6(), VLAN: int(p.Spec.SubnetInfo.VLAN)}, nil
}

// ResolveVLAN applies the VLAN precedence rule: a non-zero VLAN of the network wins; otherwise
// the pools' non-zero subnetInfo.vlan, which must then agree; otherwise 0 (untagged).
func ResolveVLAN(networkVLAN int, pools []Pool) (int, error) {
	if networkVLAN != 0 {
		return networkVLAN, nil
	}
	vlan, from := 0, ""
	for _, p := range pools {
		if p.VLAN == 0 {
			continue
		}
		if vlan == 0 {
			vlan, from = p.VLAN, p.Name
			continue
		}
		if p.VLAN != vlan {
			return 0, fmt.Errorf(`IPPools %q (vlan %d) and %q (vlan %d) have conflicting VLANs; set "vlan" in the network configuration to choose one`,
				from, vlan, p.Name, p.VLAN)
		}
	}
	return vlan, nil
}

// CheckPoolFamilies allows at most one pool per address family: each pool gives the interface one
// address, and two of one family would leave the choice of source address to chance.
func CheckPoolFamilies(pools []Pool) error {
	byFamily := map[bool]string{}
	for _, p := range pools {
		if other, taken := byFamily[p.IPv6]; taken {
			return fmt.Errorf("IPPools %q and %q are both %s; list at most one IPv4 and one IPv6 pool",
				other, p.Name, familyWord(p.IPv6))
		}
		byFamily[p.IPv6] = p.Name
	}
	return nil
}

// CheckMTU applies the IPv6 floor: with an IPv6 pool the MTU must be at least 1280 (RFC 8200).
// The error is worded as a detail of the mtu field.
func CheckMTU(mtu int, pools []Pool) error {
	for _, p := range pools {
		if p.IPv6 && mtu < MinIPv6MTU {
			return fmt.Errorf("must be at least %d, the IPv6 minimum, because IPPool %q is IPv6", MinIPv6MTU, p.Name)
		}
	}
	return nil
}

func familyWord(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

// ResolveWithPools applies the rules that need the referenced IPPools (given in the order of
// IPAM.IPPools) and returns the VLAN the interface's port gets. Errors name the network and field.
func (n *Network) ResolveWithPools(pools []Pool) (int, error) {
	root := nadConfigPath
	if n.Namespace == "" {
		root = nil
	}
	var errs field.ErrorList
	if err := checkPoolNames(n, pools); err != nil {
		errs = append(errs, field.InternalError(child(root, "ipam").Child("ippools"), err))
	}
	if err := CheckPoolFamilies(pools); err != nil {
		errs = append(errs, field.Invalid(child(root, "ipam").Child("ippools"), poolNames(pools), err.Error()))
	}
	if err := CheckMTU(n.MTU, pools); err != nil {
		errs = append(errs, field.Invalid(child(root, "mtu"), n.MTU, err.Error()))
	}
	vlan, err := ResolveVLAN(n.VLAN, pools)
	if err != nil {
		errs = append(errs, field.Invalid(child(root, "ipam").Child("ippools"), poolNames(pools), err.Error()))
	}
	if len(errs) > 0 {
		if n.Namespace != "" {
			return 0, fmt.Errorf("NetworkAttachmentDefinition %s: %w", n.Key(), errs.ToAggregate())
		}
		return 0, fmt.Errorf("network %q: %w", n.Name, errs.ToAggregate())
	}
	return vlan, nil
}

func checkPoolNames(n *Network, pools []Pool) error {
	var want []string
	if n.IPAM != nil {
		want = n.IPAM.IPPools
	}
	got := poolNames(pools)
	if strings.Join(want, ",") != strings.Join(got, ",") {
		return fmt.Errorf("pools %v passed for ippools %v", got, want)
	}
	return nil
}

func poolNames(pools []Pool) []string {
	names := make([]string, 0, len(pools))
	for _, p := range pools {
		names = append(names, p.Name)
	}
	return names
}
