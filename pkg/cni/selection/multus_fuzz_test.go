package selection

import (
	"fmt"
	"strings"
	"testing"

	nadutils "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/utils"
)

// FuzzParseAgreesWithMultus compares Parse with the NAD client's parser (ParseNetworkAnnotation,
// which ParsePodNetworkAnnotation and Multus use): whenever both accept an annotation, they must
// select the same networks, in the same order, with the same namespace, name and requested
// interface. Where they differ is by design; each difference is documented in docs/networks.md
// ("Compared with the Multus parser"):
//
//   - An empty or blank annotation selects no network here; the NAD client reports an error for an
//     empty one and an element with an empty name for a blank one.
//   - We validate what the NAD client passes through: names (DNS-1123 subdomain) and namespaces
//     (DNS-1123 label) in the JSON form too, interface names (Linux rules, not eth0, no name
//     twice), MACs, IPs and default routes, at most one default route per address family, at most
//     MaxAttachments networks. The NAD client's shorthand allows only DNS-1123 labels for all three
//     parts, so it refuses names with dots and interface names such as Data_1 that we accept.
//   - Shorthand entries that are empty ("a,,b"), with nothing before '/' ("/a") or nothing after
//     '@' ("a@") are errors here; the NAD client accepts them with empty parts.
//   - JSON is strict here: unknown keys, keys in another case ("Name"), keys given twice and list
//     elements that are not objects are errors; encoding/json ignores unknown keys, matches keys
//     case-insensitively, keeps the last duplicate and turns null into a nil element (on which the
//     NAD client then panics).
//   - An element without a requested interface gets the next free ethN here; the NAD client leaves
//     the name empty for the runtime to choose. The comparison below therefore compares interface
//     names only where one was requested.
func FuzzParseAgreesWithMultus(f *testing.F) {
	for _, c := range acceptCases {
		f.Add(c.annotation)
	}
	for _, c := range rejectCases {
		f.Add(c.annotation)
	}
	for _, seed := range []string{
		"a, b@net1 ,ns/c", "a/b", "a@net1,b@net1", "vlan.100", `[{"Name": "a"}]`, `[null]`, `null`,
		`[{"name": "a", "namespace": ""}]`, `[{"name": "a", "interface": ""}]`, " , ", "a@B",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, annotation string) {
		ours, err := Parse("pod-ns", annotation)
		if err != nil || strings.TrimSpace(annotation) == "" {
			return // a blank annotation is a documented difference
		}
		theirs, err := multusParse(annotation)
		if err != nil {
			return
		}
		if len(ours) != len(theirs) {
			t.Fatalf("%q: we select %d networks, the NAD client %d", annotation, len(ours), len(theirs))
		}
		for i, a := range ours {
			m := theirs[i]
			if a.Namespace != m.Namespace || a.Name != m.Name {
				t.Fatalf("%q: element %d is %s/%s here, %s/%s in the NAD client", annotation, i, a.Namespace, a.Name, m.Namespace, m.Name)
			}
			if a.InterfaceRequested != (m.InterfaceRequest != "") || (a.InterfaceRequested && a.Interface != m.InterfaceRequest) {
				t.Fatalf("%q: element %d requests interface %q (requested %v) here, %q in the NAD client",
					annotation, i, a.Interface, a.InterfaceRequested, m.InterfaceRequest)
			}
		}
	})
}

// multusParse runs the NAD client's parser, turning its panic on a null list element into an
// error: such input is refused here, so it only needs to count as "not accepted".
func multusParse(annotation string) (elements []struct{ Namespace, Name, InterfaceRequest string }, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("NAD client panicked: %v", r)
		}
	}()
	parsed, err := nadutils.ParseNetworkAnnotation(annotation, "pod-ns")
	if err != nil {
		return nil, err
	}
	for _, e := range parsed {
		elements = append(elements, struct{ Namespace, Name, InterfaceRequest string }{e.Namespace, e.Name, e.InterfaceRequest})
	}
	return elements, nil
}
