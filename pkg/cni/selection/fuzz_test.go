package selection

import (
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/podvlan/podvlan/pkg/ifname"
)

// FuzzParse checks that the parser never panics and that everything it accepts is what the
// attach engine may rely on: valid names, unique valid interface names other than eth0, unicast
// MACs, parsed addresses, at most one default route per family.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"vlan100",
		"networks/vlan100@data0, vlan200",
		"a,b@eth1,c",
		`[{"name": "vlan100"}]`,
		`[{"name": "vlan200", "namespace": "networks", "interface": "eth200", "mac": "02:00:00:00:00:01", "ips": ["10.1.1.5/24"], "default-route": ["10.1.1.1"]}]`,
		`[{"name": vlan100}]`,
		`[{'name': 'x'}]`,
		`{"name": "a"}`,
		`[{"name": "a", "name": "b"}]`,
		"a@eth0",
		"a,,b",
		"a/b/c@d@e",
		`[{"name": "a", "cni-args": {"x": [1, {"y": null}]}, "portMappings": [{"hostPort": 1}]}]`,
		`[{"name":"a","ips":["::ffff:1.2.3.4"],"default-route":["fe80::1%eth0"]}]`,
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, annotation string) {
		attachments, err := Parse("pod-ns", annotation)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("empty error message")
			}
			return
		}
		interfaces := map[string]bool{}
		defaultRoutes := map[bool]bool{}
		for i, a := range attachments {
			if a.Index != i {
				t.Fatalf("attachment %d has index %d", i, a.Index)
			}
			if msgs := validation.IsDNS1123Subdomain(a.Name); len(msgs) > 0 {
				t.Fatalf("accepted network name %q: %v", a.Name, msgs)
			}
			if msgs := validation.IsDNS1123Label(a.Namespace); len(msgs) > 0 {
				t.Fatalf("accepted namespace %q: %v", a.Namespace, msgs)
			}
			if err := ifname.Validate(a.Interface); err != nil || a.Interface == PrimaryInterface || interfaces[a.Interface] {
				t.Fatalf("accepted interface %q (err %v, duplicate %v)", a.Interface, err, interfaces[a.Interface])
			}
			interfaces[a.Interface] = true
			if a.MAC != nil && (len(a.MAC) != 6 || a.MAC[0]&1 != 0) {
				t.Fatalf("accepted MAC %s", a.MAC)
			}
			for _, ip := range a.IPs {
				if !ip.Addr.IsValid() || ip.Addr.Is4In6() || ip.Bits > ip.Addr.BitLen() {
					t.Fatalf("accepted IP %v", ip)
				}
			}
			for _, gw := range a.DefaultRoute {
				if defaultRoutes[gw.Is6()] {
					t.Fatalf("accepted two default routes of one family")
				}
				defaultRoutes[gw.Is6()] = true
			}
		}
		if len(attachments) > MaxAttachments {
			t.Fatalf("accepted %d attachments", len(attachments))
		}
	})
}
