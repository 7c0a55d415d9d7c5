package netconf

import (
	"bytes"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podvlan/podvlan/internal/strictjson"
	"github.com/podvlan/podvlan/pkg/cni/request"
)

// nadConfigPath is where the configuration sits in a NetworkAttachmentDefinition.
var nadConfigPath = field.NewPath("spec", "config")

// ParseNAD reads the spec.config of the NetworkAttachmentDefinition namespace/name. ours is
// false, with no error, when the configuration belongs to another plugin (another type, a
// configuration list, or an empty config that Multus reads from a file); that is not a failure.
// Errors name the NetworkAttachmentDefinition and the field.
func ParseNAD(namespace, name, config string) (network *Network, ours bool, err error) {
	nadErr := func(err error) error {
		return fmt.Errorf("NetworkAttachmentDefinition %s/%s: %w", namespace, name, err)
	}
	if strings.TrimSpace(config) == "" {
		return nil, false, nil
	}
	conf, found, err := decode([]byte(config), nadConfigPath)
	if err != nil {
		return nil, false, nadErr(err)
	}
	if conf.Type != PluginType {
		return nil, false, nil
	}
	errs := judged(found, nadConfigPath, false)
	if found.WrongType == nil {
		var validationErrs field.ErrorList
		network, validationErrs = validateNetwork(conf, nadConfigPath)
		errs = append(errs, validationErrs...)
	}
	if len(errs) > 0 {
		return nil, true, nadErr(errs.ToAggregate())
	}
	network.Namespace = namespace
	network.Name = name
	return network, true, nil
}

// decode reads data, which must be a JSON object, into a Config in one strict pass; found holds
// the duplicate and unknown keys and the value of the wrong type, with their paths below root.
func decode(data []byte, root *field.Path) (conf *Config, found strictjson.Result, err error) {
	conf = &Config{}
	found, err = strictjson.Decode(data, conf, root)
	if err != nil {
		if isSyntax, offset := strictjson.SyntaxOffset(err); isSyntax {
			return nil, found, fmt.Errorf("%s: not valid JSON at byte %d: %w", pathString(root), offset, err)
		}
		return nil, found, fmt.Errorf("%s: not valid JSON: %w", pathString(root), err)
	}
	if found.RootKind != "" || bytes.Equal(bytes.TrimSpace(data), []byte("null")) {
		return nil, found, fmt.Errorf("%s: must be a JSON object", pathString(root))
	}
	return conf, found, nil
}

func pathString(p *field.Path) string {
	if p == nil {
		return "configuration"
	}
	return p.String()
}

// judged returns the problems of found that are ours to report: other capabilities under
// runtimeConfig (portMappings, bandwidth, ...) are the runtime's business, and in an IPAM-only
// configuration only cniVersion and the ipam section are ours, the rest is the main plugin's.
func judged(found strictjson.Result, root *field.Path, ipamOnly bool) field.ErrorList {
	var errs field.ErrorList
	for _, p := range found.Duplicates {
		if !ipamOnly || isOurs(p.String(), root) {
			errs = append(errs, field.Forbidden(p, "key given twice"))
		}
	}
	for _, u := range found.Unknown {
		if isUnder(u.Path.String(), root, "runtimeConfig") || isUnder(u.Path.String(), root, gcKeys...) ||
			(ipamOnly && !isOurs(u.Path.String(), root)) {
			continue
		}
		errs = append(errs, field.Forbidden(u.Path, u.Detail()))
	}
	if found.WrongType != nil && (!ipamOnly || isOurs(found.WrongType.Field, root)) {
		errs = append(errs, found.WrongType)
	}
	return errs
}

// isOurs reports whether the field at path s is what an IPAM-only configuration asks of us:
// cniVersion, the ipam section, or the attachments a GC call keeps.
func isOurs(s string, root *field.Path) bool {
	for _, key := range append([]string{"cniVersion", "ipam"}, gcKeys...) {
		if s == child(root, key).String() {
			return true
		}
	}
	return isUnder(s, root, "ipam") || isUnder(s, root, gcKeys...)
}

// isUnder reports whether the field at path s lies below one of root's children.
func isUnder(s string, root *field.Path, children ...string) bool {
	for _, name := range children {
		prefix := child(root, name).String()
		if strings.HasPrefix(s, prefix+".") || strings.HasPrefix(s, prefix+"[") {
			return true
		}
	}
	return false
}

func child(root *field.Path, name string) *field.Path {
	if root == nil {
		return field.NewPath(name)
	}
	return root.Child(name)
}

// validateNetwork checks a configuration of type antrea with networkType vlan and returns the
// defaulted Network.
func validateNetwork(conf *Config, root *field.Path) (*Network, field.ErrorList) {
	var errs field.ErrorList
	errs = append(errs, validateCNIVersion(conf.CNIVersion, child(root, "cniVersion"))...)
	ntPath := child(root, "networkType")
	networkType := ""
	if conf.NetworkType != nil {
		networkType = *conf.NetworkType
	}
	switch networkType {
	case NetworkTypeVLAN:
	case "":
		errs = append(errs, field.Required(ntPath, `set "networkType": "vlan"`))
	default:
		errs = append(errs, field.NotSupported(ntPath, networkType, []string{NetworkTypeVLAN}))
	}
	if conf.VLAN < 0 || conf.VLAN > MaxVLAN {
		errs = append(errs, field.Invalid(child(root, "vlan"), conf.VLAN,
			fmt.Sprintf("must be 0 (untagged, or the IPPools' VLAN) or a VLAN ID from 1 to %d", MaxVLAN)))
	}
	ipam, ipamErrs := validateIPAM(conf.IPAM, child(root, "ipam"))
	errs = append(errs, ipamErrs...)
	mtu := conf.MTU
	if mtu == 0 {
		mtu = DefaultMTU
	}
	mtuPath := child(root, "mtu")
	if mtu < MinMTU || mtu > MaxMTU {
		errs = append(errs, field.Invalid(mtuPath, conf.MTU,
			fmt.Sprintf("must be between %d and %d (0 or unset means %d)", MinMTU, MaxMTU, DefaultMTU)))
	} else if ipam != nil && mtu < MinIPv6MTU && hasStaticIPv6(ipam) {
		errs = append(errs, field.Invalid(mtuPath, conf.MTU,
			fmt.Sprintf("must be at least %d with an IPv6 address (RFC 8200)", MinIPv6MTU)))
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return &Network{
		Name:       conf.Name,
		CNIVersion: conf.CNIVersion,
		MTU:        mtu,
		VLAN:       conf.VLAN,
		IPAM:       ipam,
	}, nil
}

func hasStaticIPv6(ipam *IPAM) bool {
	for _, a := range ipam.Addresses {
		if a.Address.Addr().Is6() {
			return true
		}
	}
	return false
}

func validateCNIVersion(v string, path *field.Path) field.ErrorList {
	if v == "" {
		return field.ErrorList{field.Required(path, "one of "+strings.Join(SupportedCNIVersions, ", "))}
	}
	if !slices.Contains(SupportedCNIVersions, v) {
		return field.ErrorList{field.NotSupported(path, v, SupportedCNIVersions)}
	}
	return nil
}

// validateIPAM checks an ipam section of type antrea; nil stays nil.
func validateIPAM(conf *IPAMConfig, path *field.Path) (*IPAM, field.ErrorList) {
	if conf == nil {
		return nil, nil
	}
	var errs field.ErrorList
	if conf.Type != IPAMType {
		if conf.Type == "" {
			errs = append(errs, field.Required(path.Child("type"), `set "type": "antrea"`))
		} else {
			errs = append(errs, field.NotSupported(path.Child("type"), conf.Type, []string{IPAMType}))
		}
	}
	ipam := &IPAM{}
	poolsPath := path.Child("ippools")
	seen := map[string]bool{}
	for i, name := range conf.IPPools {
		p := poolsPath.Index(i)
		switch {
		case i >= MaxIPPools:
			errs = append(errs, field.Invalid(p, name,
				fmt.Sprintf("at most %d IPPools: one IPv4 and one IPv6 pool", MaxIPPools)))
		case name == "":
			errs = append(errs, field.Required(p, "the name of an IPPool"))
		case len(validation.IsDNS1123Subdomain(name)) > 0:
			errs = append(errs, field.Invalid(p, name, "not a valid IPPool name: "+
				strings.Join(validation.IsDNS1123Subdomain(name), "; ")))
		case seen[name]:
			errs = append(errs, field.Duplicate(p, name))
		default:
			seen[name] = true
			ipam.IPPools = append(ipam.IPPools, name)
		}
	}
	addrsPath := path.Child("addresses")
	seenAddrs := map[netip.Addr]bool{}
	for i, a := range conf.Addresses {
		p := addrsPath.Index(i)
		addr, addrErrs := validateStaticAddress(a, p)
		if len(addrErrs) > 0 {
			errs = append(errs, addrErrs...)
			continue
		}
		if seenAddrs[addr.Address.Addr()] {
			errs = append(errs, field.Duplicate(p.Child("address"), a.Address))
			continue
		}
		seenAddrs[addr.Address.Addr()] = true
		ipam.Addresses = append(ipam.Addresses, addr)
	}
	if len(conf.IPPools) == 0 && len(conf.Addresses) == 0 {
		errs = append(errs, field.Required(poolsPath,
			"an ipam section needs ippools and/or addresses; remove ipam for an interface without addresses"))
	}
	routesPath := path.Child("routes")
	for i, r := range conf.Routes {
		route, routeErrs := validateRoute(r, routesPath.Index(i))
		errs = append(errs, routeErrs...)
		if len(routeErrs) == 0 {
			ipam.Routes = append(ipam.Routes, route)
		}
	}
	if conf.DNS != nil {
		for i, ns := range conf.DNS.Nameservers {
			if _, err := request.ParseAddr(ns); err != nil {
				errs = append(errs, field.Invalid(path.Child("dns", "nameservers").Index(i), ns, err.Error()))
			}
		}
		ipam.DNS = *conf.DNS
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return ipam, nil
}

func validateStaticAddress(a AddressConfig, path *field.Path) (Address, field.ErrorList) {
	var errs field.ErrorList
	ip, err := request.ParseIP(a.Address)
	switch {
	case a.Address == "":
		errs = append(errs, field.Required(path.Child("address"), "an address with its prefix length, e.g. 10.1.1.5/24"))
	case err != nil:
		errs = append(errs, field.Invalid(path.Child("address"), a.Address, err.Error()))
	case !ip.HasPrefix():
		errs = append(errs, field.Invalid(path.Child("address"), a.Address,
			fmt.Sprintf("needs a prefix length, e.g. %s/24", a.Address)))
	}
	out := Address{}
	if len(errs) == 0 {
		out.Address = ip.Prefix()
	}
	if a.Gateway != "" {
		gw, err := request.ParseAddr(a.Gateway)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(path.Child("gateway"), a.Gateway, err.Error()))
		case len(errs) == 0 && gw.Is4() != out.Address.Addr().Is4():
			errs = append(errs, field.Invalid(path.Child("gateway"), a.Gateway,
				fmt.Sprintf("must be of the address family of %s", out.Address)))
		default:
			out.Gateway = gw
		}
	}
	return out, errs
}

func validateRoute(r RouteConfig, path *field.Path) (Route, field.ErrorList) {
	var errs field.ErrorList
	out := Route{}
	dstPath := path.Child("dst")
	dst, err := netip.ParsePrefix(r.Dst)
	switch {
	case r.Dst == "":
		errs = append(errs, field.Required(dstPath, "a destination network, e.g. 0.0.0.0/0 or 10.20.0.0/16"))
	case err != nil:
		errs = append(errs, field.Invalid(dstPath, r.Dst, "not a network in CIDR notation, e.g. 10.20.0.0/16"))
	case dst.Addr().Is4In6():
		errs = append(errs, field.Invalid(dstPath, r.Dst, "write IPv4 networks in dotted form, not IPv4-mapped IPv6"))
	case dst != dst.Masked():
		errs = append(errs, field.Invalid(dstPath, r.Dst, fmt.Sprintf("has host bits set; did you mean %s?", dst.Masked())))
	default:
		out.Dst = dst
	}
	if r.GW != "" {
		gw, err := request.ParseAddr(r.GW)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(path.Child("gw"), r.GW, err.Error()))
		case len(errs) == 0 && gw.Is4() != out.Dst.Addr().Is4():
			errs = append(errs, field.Invalid(path.Child("gw"), r.GW,
				fmt.Sprintf("must be of the address family of %s", out.Dst)))
		default:
			out.GW = gw
		}
	}
	return out, errs
}

// validateRuntime checks the runtimeConfig mac and ips.
func validateRuntime(rc *RuntimeConfig, path *field.Path) (Runtime, field.ErrorList) {
	var out Runtime
	if rc == nil {
		return out, nil
	}
	var errs field.ErrorList
	if rc.MAC != "" {
		mac, err := request.ParseMAC(rc.MAC)
		if err != nil {
			errs = append(errs, field.Invalid(path.Child("mac"), rc.MAC, err.Error()))
		}
		out.MAC = mac
	}
	seen := map[netip.Addr]bool{}
	for i, s := range rc.IPs {
		p := path.Child("ips").Index(i)
		ip, err := request.ParseIP(s)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p, s, err.Error()))
		case seen[ip.Addr]:
			errs = append(errs, field.Duplicate(p, s))
		default:
			seen[ip.Addr] = true
			out.IPs = append(out.IPs, ip)
		}
	}
	if len(errs) > 0 {
		return Runtime{}, errs
	}
	return out, nil
}
