// Package selection reads the Pod annotation k8s.v1.cni.cncf.io/networks, in its JSON-list and
// comma-separated forms, into the list of networks to attach with the interface name each gets.
// Its errors are shown to users (Pod Events, CNI results), so they name the element and field.
package selection

import (
	"net"
	"net/netip"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podvlan/podvlan/pkg/cni/request"
)

const (
	// AnnotationKey is the Pod annotation that selects secondary networks.
	AnnotationKey = nadv1.NetworkAttachmentAnnot
	// PrimaryInterface is the Pod's primary interface, which no secondary network may take.
	PrimaryInterface = "eth0"
	// InterfacePrefix is the stem of generated interface names: eth1, eth2, ...
	InterfacePrefix = "eth"
	// MaxAttachments bounds the networks of one Pod, the way Antrea's eth1..eth100 naming does.
	MaxAttachments = 100
)

// Element is one validated element of the annotation: a request for one network under one
// interface name (the NAD client calls it NetworkSelectionElement).
type Element struct {
	// Index is the element's position in the annotation, for messages.
	Index int
	// Namespace of the NetworkAttachmentDefinition; the Pod's when the element names none.
	Namespace string
	// Name of the NetworkAttachmentDefinition.
	Name string
	// Interface is the name the interface gets inside the Pod: the requested one, or the next
	// free ethN.
	Interface string
	// InterfaceRequested is true when the user chose Interface.
	InterfaceRequested bool
	// MAC is the requested MAC address, nil when none was requested.
	MAC net.HardwareAddr
	// IPs are the requested static addresses, in order.
	IPs []request.IP
	// DefaultRoute lists the gateways through which the Pod's default route should go, at most
	// one per address family.
	DefaultRoute []netip.Addr
	// Selection is the selection element as written, with Namespace and InterfaceRequest filled in.
	// Fields this package does not interpret (portMappings, bandwidth, cni-args,
	// infiniband-guid, ipam-claim-reference) are passed on here.
	Selection nadv1.NetworkSelectionElement
}

// NetworkKey returns "namespace/name", the identity of the network in network-status.
func (a *Element) NetworkKey() string {
	return a.Namespace + "/" + a.Name
}

// rootPath prefixes every field path in errors, so that a message read in a Pod Event says which
// annotation is wrong.
var rootPath = field.NewPath(AnnotationKey)
