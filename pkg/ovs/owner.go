package ovs

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/podvlan/podvlan/pkg/ifname"
)

// external_ids keys this package writes. OwnerKey=OwnerValue marks a row as ours; nothing else is
// ever modified or deleted by the reconciling calls.
const (
	OwnerKey   = "podvlan-owner"
	OwnerValue = "secondary-network"
	RoleKey    = "podvlan-role"

	RoleBridge = "bridge"
	RoleUplink = "uplink"
	RolePod    = "pod"

	PodNamespaceKey = "podvlan-pod-namespace"
	PodNameKey      = "podvlan-pod-name"
	PodUIDKey       = "podvlan-pod-uid"
	ContainerIDKey  = "podvlan-container-id"
	IfNameKey       = "podvlan-ifname"
	NetworkKey      = "podvlan-network"
	// WayKey records how the CNI call that made the port came in (chained or delegate), so that
	// CNI GC of one way in never touches another's ports.
	WayKey = "podvlan-way"
	AddressesKey    = "podvlan-addresses"
	// GatewaysKey holds the gateways of the interface's addresses (at most one per family), which
	// routes without a next hop go through.
	GatewaysKey = "podvlan-gateways"
	// NetworkStatusKey holds the Pod interface's network-status entry (see SetPortRecord).
	NetworkStatusKey = "podvlan-network-status"
)

// PortOwner is the Pod interface an access port belongs to, recorded in the port's external_ids.
type PortOwner struct {
	PodNamespace string
	PodName      string
	PodUID       string // may be empty when the runtime does not pass K8S_POD_UID
	ContainerID  string // the sandbox's container ID from the CNI call
	IfName       string // the interface name inside the Pod, e.g. eth1
	Network      string // the NetworkAttachmentDefinition as "namespace/name"
	Way          string // WayChained or WayDelegate; empty on ports made before it was recorded
	Addresses    []string
	// Gateways are the gateways of the addresses, at most one per family.
	Gateways []string
}

// Validate reports what is missing or malformed; the key fields are required because
// reconciliation and deletion find ports by them.
func (o PortOwner) Validate() error {
	var errs []error
	for _, f := range []struct{ name, value string }{
		{"pod namespace", o.PodNamespace}, {"pod name", o.PodName},
		{"container ID", o.ContainerID}, {"interface name", o.IfName},
	} {
		if f.value == "" {
			errs = append(errs, fmt.Errorf("%s is empty", f.name))
		}
	}
	// The network is "namespace/name" of a NetworkAttachmentDefinition, or a bare name when it
	// came as a Multus delegate configuration, which does not carry the namespace.
	if o.Network != "" {
		ns, name, namespaced := strings.Cut(o.Network, "/")
		if namespaced && (ns == "" || name == "" || strings.Contains(name, "/")) {
			errs = append(errs, fmt.Errorf("network %q is neither a name nor namespace/name", o.Network))
		}
	}
	errs = append(errs, validateAddresses(o.Addresses), validateGateways(o.Gateways))
	return errors.Join(errs...)
}

// validateAddresses reports addresses that are not in CIDR notation.
func validateAddresses(addresses []string) error {
	var errs []error
	for _, a := range addresses {
		if _, err := netip.ParsePrefix(a); err != nil {
			errs = append(errs, fmt.Errorf("address %q is not in CIDR notation", a))
		}
	}
	return errors.Join(errs...)
}

// validateGateways reports gateways that are not IP addresses.
func validateGateways(gateways []string) error {
	var errs []error
	for _, g := range gateways {
		if _, err := netip.ParseAddr(g); err != nil {
			errs = append(errs, fmt.Errorf("gateway %q is not an IP address", g))
		}
	}
	return errors.Join(errs...)
}

// Equal reports whether two owners describe the same Pod interface with the same addresses.
func (o PortOwner) Equal(other PortOwner) bool {
	return o.PodNamespace == other.PodNamespace && o.PodName == other.PodName &&
		o.PodUID == other.PodUID && o.ContainerID == other.ContainerID && o.IfName == other.IfName &&
		o.Network == other.Network && o.Way == other.Way && slices.Equal(o.Addresses, other.Addresses) && slices.Equal(o.Gateways, other.Gateways)
}

// String names the owner for logs and errors.
func (o PortOwner) String() string {
	return fmt.Sprintf("%s/%s (container %s, interface %s)", o.PodNamespace, o.PodName, o.ContainerID, o.IfName)
}

// externalIDs encodes the owner for a Pod port's external_ids, together with our marks.
func (o PortOwner) externalIDs() map[string]string {
	ids := ourMarks(RolePod)
	set := func(k, v string) {
		if v != "" {
			ids[k] = v
		}
	}
	set(PodNamespaceKey, o.PodNamespace)
	set(PodNameKey, o.PodName)
	set(PodUIDKey, o.PodUID)
	set(ContainerIDKey, o.ContainerID)
	set(IfNameKey, o.IfName)
	set(NetworkKey, o.Network)
	set(WayKey, o.Way)
	set(AddressesKey, strings.Join(o.Addresses, ","))
	set(GatewaysKey, strings.Join(o.Gateways, ","))
	return ids
}

// ownerFromExternalIDs decodes what externalIDs wrote; ok is false for rows that are not our Pod
// ports.
func ownerFromExternalIDs(ids map[string]string) (owner PortOwner, ok bool) {
	if !isOurs(ids, RolePod) {
		return PortOwner{}, false
	}
	owner = PortOwner{
		PodNamespace: ids[PodNamespaceKey],
		PodName:      ids[PodNameKey],
		PodUID:       ids[PodUIDKey],
		ContainerID:  ids[ContainerIDKey],
		IfName:       ids[IfNameKey],
		Network:      ids[NetworkKey],
		Way:          ids[WayKey],
	}
	if a := ids[AddressesKey]; a != "" {
		owner.Addresses = strings.Split(a, ",")
	}
	if g := ids[GatewaysKey]; g != "" {
		owner.Gateways = strings.Split(g, ",")
	}
	return owner, true
}

func ourMarks(role string) map[string]string {
	return map[string]string{OwnerKey: OwnerValue, RoleKey: role}
}

func isOurs(ids map[string]string, role string) bool {
	return ids[OwnerKey] == OwnerValue && ids[RoleKey] == role
}

// validateInterfaceName applies the kernel's rules for a network device name (package ifname),
// which OVS port, interface and bridge names must follow too.
func validateInterfaceName(name string) error {
	if err := ifname.Validate(name); err != nil {
		return fmt.Errorf("interface name %q: %w", name, err)
	}
	return nil
}
