package selection

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podvlan/podvlan/internal/strictjson"
	"github.com/podvlan/podvlan/pkg/cni/request"
	"github.com/podvlan/podvlan/pkg/ifname"
)

// elementShape lists the keys of a NetworkSelectionElement with the types we read them as.
// default-route is text here (net.IP in the library type) so that a bad gateway gets our message;
// a test keeps the key set equal to the library's.
type elementShape struct {
	Name                  string                  `json:"name"`
	Namespace             string                  `json:"namespace,omitempty"`
	IPRequest             []string                `json:"ips,omitempty"`
	MacRequest            string                  `json:"mac,omitempty"`
	InfinibandGUIDRequest string                  `json:"infiniband-guid,omitempty"`
	InterfaceRequest      string                  `json:"interface,omitempty"`
	PortMappingsRequest   []*nadv1.PortMapEntry   `json:"portMappings,omitempty"`
	BandwidthRequest      *nadv1.BandwidthEntry   `json:"bandwidth,omitempty"`
	CNIArgs               *map[string]interface{} `json:"cni-args,omitempty"`
	GatewayRequest        []string                `json:"default-route,omitempty"`
	IPAMClaimReference    string                  `json:"ipam-claim-reference,omitempty"`
}

// Parse reads the annotation of a Pod in podNamespace. An empty (or blank) annotation selects no
// network. The JSON form is used when the text contains '[', '{' or '"', as Multus decides.
// Every problem found is returned at once, each with its field path.
func Parse(podNamespace, annotation string) ([]Element, error) {
	if podNamespace == "" {
		return nil, errors.New("parse network selection: the Pod's namespace is empty")
	}
	if strings.TrimSpace(annotation) == "" {
		return nil, nil
	}
	var (
		elements []elementShape
		errs     field.ErrorList
	)
	if strings.ContainsAny(annotation, `[{"`) {
		var err error
		elements, errs, err = parseJSON(annotation)
		if err != nil {
			return nil, err
		}
	} else {
		elements, errs = parseShorthand(annotation)
	}
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	if len(elements) > MaxAttachments {
		return nil, field.ErrorList{field.TooMany(rootPath, len(elements), MaxAttachments)}.ToAggregate()
	}
	attachments, errs := resolve(podNamespace, elements)
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return attachments, nil
}

// parseJSON reads the JSON-list form in one strict pass (keys matched with their case, unknown
// and duplicate keys reported with their paths). A syntax error is returned as a plain error
// (there is no field to point at); shape problems as field errors. Only when a value has the
// wrong type, which stops the strict checks, are the elements read again one by one, so that
// each is judged.
func parseJSON(annotation string) ([]elementShape, field.ErrorList, error) {
	data := []byte(annotation)
	// Pointers, so that a null element is seen rather than read as an element without fields.
	var elements []*elementShape
	found, err := strictjson.Decode(data, &elements, rootPath)
	switch {
	case err != nil:
		return nil, nil, describeSyntaxError(annotation, err)
	case found.RootKind != "":
		return nil, nil, notAList(found.RootKind)
	case found.WrongType != nil:
		return nil, elementErrors(data), nil
	}
	errs := found.Errors()
	values := make([]elementShape, len(elements))
	for i, e := range elements {
		if e == nil {
			errs = append(errs, field.TypeInvalid(rootPath.Index(i), nil, mustBeObject))
			continue
		}
		values[i] = *e
	}
	return values, errs, nil
}

const mustBeObject = `must be an object such as {"name": "vlan100"}`

// elementErrors judges each element of a list that does not decode: its unknown and duplicate
// keys, and its first value of the wrong type.
func elementErrors(data []byte) field.ErrorList {
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return field.ErrorList{field.Invalid(rootPath, "[...]", err.Error())}
	}
	var errs field.ErrorList
	for i, raw := range raws {
		var e elementShape
		found, _ := strictjson.Decode(raw, &e, rootPath.Index(i))
		if found.RootKind != "" || string(raw) == "null" {
			var value any
			_ = json.Unmarshal(raw, &value)
			errs = append(errs, field.TypeInvalid(rootPath.Index(i), shortValue(value), mustBeObject))
			continue
		}
		errs = append(errs, found.Errors()...)
	}
	return errs
}

func notAList(kind string) error {
	if kind == "object" {
		return fmt.Errorf(`%s: must be a JSON list: wrap the object in [ ], e.g. [{"name": "vlan100"}]`, AnnotationKey)
	}
	return fmt.Errorf(`%s: must be a JSON list of objects (e.g. [{"name": "vlan100"}]) or a comma-separated list of names without quotes (e.g. vlan100,other-ns/vlan200@eth5)`, AnnotationKey)
}

// parseShorthand reads "name", "namespace/name", "name@ifname", "namespace/name@ifname",
// separated by commas, with white space around items ignored, as Multus reads them.
func parseShorthand(annotation string) ([]elementShape, field.ErrorList) {
	var (
		elements []elementShape
		errs     field.ErrorList
	)
	for i, item := range strings.Split(annotation, ",") {
		item = strings.TrimSpace(item)
		path := rootPath.Index(i)
		if item == "" {
			errs = append(errs, field.Required(path, "empty entry: remove the extra comma"))
			continue
		}
		var e elementShape
		rest := item
		if ns, name, found := strings.Cut(rest, "/"); found {
			if strings.Contains(name, "/") {
				errs = append(errs, field.Invalid(path, item, "use at most one '/', as in namespace/name@interface"))
				continue
			}
			e.Namespace = strings.TrimSpace(ns)
			rest = name
			if e.Namespace == "" {
				errs = append(errs, field.Required(path.Child("namespace"), "nothing before '/': write namespace/name or just name"))
				continue
			}
		}
		if name, iface, found := strings.Cut(rest, "@"); found {
			if strings.Contains(iface, "@") {
				errs = append(errs, field.Invalid(path, item, "use at most one '@', as in namespace/name@interface"))
				continue
			}
			e.InterfaceRequest = strings.TrimSpace(iface)
			rest = name
			if e.InterfaceRequest == "" {
				errs = append(errs, field.Required(path.Child("interface"), "nothing after '@': write name@interface or just name"))
				continue
			}
		}
		e.Name = strings.TrimSpace(rest)
		elements = append(elements, e)
	}
	return elements, errs
}

// resolve validates each element and assigns interface names.
func resolve(podNamespace string, elements []elementShape) ([]Element, field.ErrorList) {
	var errs field.ErrorList
	attachments := make([]Element, len(elements))
	requested := map[string]int{}    // interface name -> element index that asked for it
	defaultRouteBy := map[bool]int{} // is IPv6 -> element index that asked for it
	macBy := map[string]int{}
	for i := range elements {
		e := &elements[i]
		path := rootPath.Index(i)
		a := &attachments[i]
		a.Index = i
		a.Name = e.Name
		a.Namespace = e.Namespace
		if a.Namespace == "" {
			a.Namespace = podNamespace
		}
		errs = append(errs, validateName(e.Name, path.Child("name"))...)
		if e.Namespace != "" {
			errs = append(errs, validateNamespace(e.Namespace, path.Child("namespace"))...)
		}
		if e.InterfaceRequest != "" {
			ifPath := path.Child("interface")
			switch err := ifname.Validate(e.InterfaceRequest); {
			case err != nil:
				errs = append(errs, field.Invalid(ifPath, e.InterfaceRequest, "not a valid interface name: "+err.Error()))
			case e.InterfaceRequest == PrimaryInterface:
				errs = append(errs, field.Invalid(ifPath, e.InterfaceRequest, "is the Pod's primary interface; choose another name"))
			default:
				if first, taken := requested[e.InterfaceRequest]; taken {
					errs = append(errs, duplicate(ifPath, e.InterfaceRequest,
						fmt.Sprintf("already requested by %s", rootPath.Index(first))))
				} else {
					requested[e.InterfaceRequest] = i
				}
			}
			a.Interface = e.InterfaceRequest
			a.InterfaceRequested = true
		}
		if e.MacRequest != "" {
			macPath := path.Child("mac")
			mac, err := request.ParseMAC(e.MacRequest)
			if err != nil {
				errs = append(errs, field.Invalid(macPath, e.MacRequest, err.Error()))
			} else if first, taken := macBy[mac.String()]; taken {
				errs = append(errs, duplicate(macPath, e.MacRequest, fmt.Sprintf(
					"already requested by %s; two interfaces of a Pod cannot share a MAC", rootPath.Index(first))))
			} else {
				macBy[mac.String()] = i
				a.MAC = mac
			}
		}
		seenIPs := map[netip.Addr]bool{}
		for j, s := range e.IPRequest {
			ipPath := path.Child("ips").Index(j)
			ip, err := request.ParseIP(s)
			if err != nil {
				errs = append(errs, field.Invalid(ipPath, s, err.Error()))
				continue
			}
			if seenIPs[ip.Addr] {
				errs = append(errs, field.Duplicate(ipPath, s))
				continue
			}
			seenIPs[ip.Addr] = true
			a.IPs = append(a.IPs, ip)
		}
		var gateways []net.IP
		for j, s := range e.GatewayRequest {
			gwPath := path.Child("default-route").Index(j)
			gw, err := request.ParseAddr(s)
			if err != nil {
				errs = append(errs, field.Invalid(gwPath, s, err.Error()))
				continue
			}
			if first, taken := defaultRouteBy[gw.Is6()]; taken {
				errs = append(errs, field.Invalid(gwPath, s, fmt.Sprintf(
					"a Pod has one default route per address family and %s already requests the IPv%s one",
					rootPath.Index(first), familyName(gw))))
				continue
			}
			defaultRouteBy[gw.Is6()] = i
			a.DefaultRoute = append(a.DefaultRoute, gw)
			gateways = append(gateways, net.IP(gw.AsSlice()))
		}
		a.Selection = nadv1.NetworkSelectionElement{
			Name:                  e.Name,
			Namespace:             a.Namespace,
			IPRequest:             e.IPRequest,
			MacRequest:            e.MacRequest,
			InfinibandGUIDRequest: e.InfinibandGUIDRequest,
			InterfaceRequest:      e.InterfaceRequest,
			PortMappingsRequest:   e.PortMappingsRequest,
			BandwidthRequest:      e.BandwidthRequest,
			CNIArgs:               e.CNIArgs,
			GatewayRequest:        gateways,
			IPAMClaimReference:    e.IPAMClaimReference,
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	assignInterfaceNames(attachments, requested)
	return attachments, nil
}

// assignInterfaceNames gives every attachment without a requested name the next ethN (from eth1)
// that no attachment asked for explicitly, so that an explicit eth2 later in the list does not
// collide with a generated one.
func assignInterfaceNames(attachments []Element, requested map[string]int) {
	next := 1
	for i := range attachments {
		a := &attachments[i]
		if a.InterfaceRequested {
			continue
		}
		for {
			candidate := InterfacePrefix + strconv.Itoa(next)
			next++
			if _, taken := requested[candidate]; !taken {
				a.Interface = candidate
				a.Selection.InterfaceRequest = candidate
				break
			}
		}
	}
}

func duplicate(path *field.Path, value any, detail string) *field.Error {
	err := field.Duplicate(path, value)
	err.Detail = detail
	return err
}

func familyName(a netip.Addr) string {
	if a.Is6() {
		return "6"
	}
	return "4"
}

func validateName(name string, path *field.Path) field.ErrorList {
	if name == "" {
		return field.ErrorList{field.Required(path, "the name of a NetworkAttachmentDefinition")}
	}
	if msgs := validation.IsDNS1123Subdomain(name); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(path, name,
			"not a valid NetworkAttachmentDefinition name: "+strings.Join(msgs, "; "))}
	}
	return nil
}

func validateNamespace(ns string, path *field.Path) field.ErrorList {
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return field.ErrorList{field.Invalid(path, ns, "not a valid namespace name: "+strings.Join(msgs, "; "))}
	}
	return nil
}

func shortValue(v any) any {
	switch v.(type) {
	case map[string]any:
		return "{...}"
	case []any:
		return "[...]"
	default:
		return v
	}
}
