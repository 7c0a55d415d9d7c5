package selection

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"

	"github.com/podvlan/podvlan/internal/jsonshape"
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

// parseJSON reads the JSON-list form in one strict pass (sigs.k8s.io/json: keys matched with
// their case, unknown and duplicate keys reported with their paths). A syntax error is returned as
// a plain error (there is no field to point at); shape problems as field errors. Only when a value
// has the wrong type is the text read again, to name that value and what it must be.
func parseJSON(annotation string) ([]elementShape, field.ErrorList, error) {
	data := []byte(annotation)
	// Pointers, so that a null element is seen rather than read as an element without fields.
	var elements []*elementShape
	strictErrs, err := sigsjson.UnmarshalStrict(data, &elements)
	if err != nil {
		if isSyntax, _ := sigsjson.SyntaxErrorOffset(err); isSyntax {
			return nil, nil, describeSyntaxError(annotation, err)
		}
		errs, err := typeErrors(data)
		return nil, errs, err
	}
	var errs field.ErrorList
	for _, strictErr := range strictErrs {
		errs = append(errs, strictError(strictErr, ""))
	}
	values := make([]elementShape, len(elements))
	for i, e := range elements {
		if e == nil {
			errs = append(errs, field.TypeInvalid(rootPath.Index(i), nil, `must be an object such as {"name": "vlan100"}`))
			continue
		}
		values[i] = *e
	}
	return values, errs, nil
}

// strictError turns one unknown or duplicate key reported by sigs.k8s.io/json into a field error
// with our path and, for an unknown key, the key it was most likely meant to be. prefix is the
// path of the decoded value within the list, "" for the whole list.
func strictError(err error, prefix string) *field.Error {
	var fieldErr sigsjson.FieldError
	if !errors.As(err, &fieldErr) {
		return field.InternalError(rootPath, err)
	}
	fieldPath := fieldErr.FieldPath()
	if prefix != "" {
		fieldPath = prefix + "." + fieldPath
	}
	path, key, keyOwner := strictPath(fieldPath)
	if strings.HasPrefix(err.Error(), "duplicate field") {
		return field.Forbidden(path, "key given twice")
	}
	detail := "unknown field"
	if keyOwner != nil {
		known := slices.Sorted(maps.Keys(jsonshape.Fields(keyOwner)))
		if s := (jsonshape.UnknownKey{Path: path, Key: key, Known: known}).Suggest(); s != "" {
			detail = fmt.Sprintf("unknown field; did you mean %q?", s)
		}
	}
	return field.Forbidden(path, detail)
}

// strictPath converts a sigs.k8s.io/json field path such as "[0].portMappings[1].hostPort" into
// our field path, and returns its last key with the struct type that key was looked up in (nil
// when the path does not lead through struct fields).
func strictPath(s string) (*field.Path, string, reflect.Type) {
	path := rootPath
	t := reflect.TypeFor[[]*elementShape]()
	key := ""
	var owner reflect.Type
	for s != "" {
		switch {
		case s[0] == '[':
			end := strings.IndexByte(s, ']')
			i, err := strconv.Atoi(s[1:max(end, 1)])
			if end < 0 || err != nil {
				return path.Child(s), s, nil
			}
			path, s = path.Index(i), s[end+1:]
			t = elem(t)
		case s[0] == '.':
			s = s[1:]
		default:
			end := strings.IndexAny(s, ".[")
			if end < 0 {
				end = len(s)
			}
			key, s = s[:end], s[end:]
			path = path.Child(key)
			owner = elem(t)
			if owner == nil || owner.Kind() != reflect.Struct {
				owner, t = nil, nil
				continue
			}
			t = jsonshape.Fields(owner)[key]
		}
	}
	return path, key, owner
}

// elem dereferences pointers and, for lists and maps, returns the type of their values.
func elem(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array || t.Kind() == reflect.Map) {
		t = t.Elem()
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
	}
	return t
}

// typeErrors names the values of the wrong type in a document that is valid JSON but does not
// decode into the element list: the document itself, list elements that are not objects, and per
// element the first key whose value has the wrong type.
func typeErrors(data []byte) (field.ErrorList, error) {
	var value any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&value); err != nil {
		return nil, fmt.Errorf("%s: %w", AnnotationKey, err)
	}
	list, ok := value.([]any)
	if !ok {
		return nil, notAList(value)
	}
	var raws []json.RawMessage
	if err := json.Unmarshal(data, &raws); err != nil {
		return nil, fmt.Errorf("%s: %w", AnnotationKey, err)
	}
	var errs field.ErrorList
	for i, item := range list {
		path := rootPath.Index(i)
		obj, isObject := item.(map[string]any)
		if !isObject {
			errs = append(errs, field.TypeInvalid(path, shortValue(item),
				`must be an object such as {"name": "vlan100"}`))
			continue
		}
		// Unknown and duplicate keys of the elements are reported too; within one element, a
		// value of the wrong type ends the reading of that element.
		var e elementShape
		strictErrs, err := sigsjson.UnmarshalStrict(raws[i], &e)
		for _, strictErr := range strictErrs {
			errs = append(errs, strictError(strictErr, fmt.Sprintf("[%d]", i)))
		}
		if err == nil {
			continue
		}
		// encoding/json's error carries the Go type and the JSON kind of the wrong value.
		var typeErr *json.UnmarshalTypeError
		if !errors.As(json.Unmarshal(raws[i], &elementShape{}), &typeErr) {
			errs = append(errs, field.Invalid(path, "{...}", err.Error()))
			continue
		}
		wrongPath, wrong := findValue(obj, strings.Split(typeErr.Field, "."), path, typeErr.Value)
		errs = append(errs, field.Invalid(wrongPath, shortValue(wrong), mustBe(typeErr.Type)))
	}
	if len(errs) == 0 {
		// encoding/json accepted what sigs.k8s.io/json refused; still an error, never a success.
		errs = append(errs, field.Invalid(rootPath, "[...]", "cannot be decoded"))
	}
	return errs, nil
}

// findValue follows the keys of an encoding/json field path (which leaves out list indexes) from
// value and returns the path and value of the first match whose JSON kind is kind, as
// encoding/json names it ("string", "number 1.5", ...); the deepest path reached when none is.
func findValue(value any, keys []string, path *field.Path, kind string) (*field.Path, any) {
	if list, ok := value.([]any); ok && (len(keys) > 0 || kind != "array") {
		for i, item := range list {
			if p, v := findValue(item, keys, path.Index(i), kind); jsonKind(v) != "" && strings.HasPrefix(kind, jsonKind(v)) {
				return p, v
			}
		}
		return path, value
	}
	if len(keys) == 0 {
		return path, value
	}
	obj, ok := value.(map[string]any)
	if !ok {
		return path, value
	}
	next, ok := obj[keys[0]]
	if !ok {
		return path, value
	}
	return findValue(next, keys[1:], path.Child(keys[0]), kind)
}

func jsonKind(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "bool"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	default:
		return ""
	}
}

// mustBe says which JSON kind a value of Go type t is written as, in jsonshape's words, which
// the other loaders use.
func mustBe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch k := t.Kind(); {
	case k == reflect.String:
		return "must be a string"
	case k == reflect.Slice || k == reflect.Array:
		return "must be a list"
	case k == reflect.Map:
		return "must be a map of keys to values"
	case k == reflect.Struct:
		return "must be an object"
	case k == reflect.Bool:
		return "must be true or false"
	case k >= reflect.Int && k <= reflect.Uint64:
		return "must be an integer"
	default:
		return "must be a number"
	}
}

func notAList(value any) error {
	switch value.(type) {
	case map[string]any:
		return fmt.Errorf(`%s: must be a JSON list: wrap the object in [ ], e.g. [{"name": "vlan100"}]`, AnnotationKey)
	default:
		return fmt.Errorf(`%s: must be a JSON list of objects (e.g. [{"name": "vlan100"}]) or a comma-separated list of names without quotes (e.g. vlan100,other-ns/vlan200@eth5)`, AnnotationKey)
	}
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
