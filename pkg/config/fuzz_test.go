package config

import (
	"testing"

	"github.com/podvlan/podvlan/pkg/ifname"
)

// FuzzLoadAgent checks that the loader never panics and that whatever it accepts satisfies every
// rule of the validator, so that the agent can trust a loaded configuration.
func FuzzLoadAgent(f *testing.F) {
	for _, seed := range []string{
		"",
		"featureGates: {SecondaryNetwork: true, AntreaIPAM: true}\nsecondaryNetwork:\n  ovsBridges:\n  - bridgeName: br-secondary\n    physicalInterfaces: [eth1]\n",
		"ovsDatapathType: netdev\novsRunDir: /run/ovs\ncniSocket: /run/a/cni.sock\nclientConnection: {kubeconfig: /k}\n",
		"ovsBridges: [{bridgeName: br}]\n",
		"secondaryNetwork: {ovsBridges: [{bridgeName: a, physicalInterfaces: [b, b, a, c, d, e, f, g, h, i]}, {bridgeName: z}]}\n",
		"featureGates: {Nope: true}\n",
		"featureGates: [x]\n",
		"a: &a [*a]\n",
		"- x\n",
		"ovsDatapathType: 3\n",
		"{\"secondaryNetwork\": {\"ovsBridges\": [{\"bridgeName\": \"br\\u0000x\"}]}}",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := LoadAgent(data)
		if err != nil {
			return
		}
		if errs := a.Validate(); len(errs) > 0 {
			t.Fatalf("LoadAgent accepted a configuration Validate rejects: %v", errs.ToAggregate())
		}
		if a.Gates == nil {
			t.Fatalf("accepted configuration without gates")
		}
		if a.OVSDatapathType != DatapathSystem && a.OVSDatapathType != DatapathNetdev {
			t.Fatalf("accepted datapath %q", a.OVSDatapathType)
		}
		if len(a.SecondaryNetwork.OVSBridges) > MaxOVSBridges {
			t.Fatalf("accepted %d bridges", len(a.SecondaryNetwork.OVSBridges))
		}
		for _, b := range a.SecondaryNetwork.OVSBridges {
			if err := ifname.Validate(b.BridgeName); err != nil {
				t.Fatalf("accepted bridge name %q: %v", b.BridgeName, err)
			}
			if len(b.PhysicalInterfaces) > MaxPhysicalInterfaces {
				t.Fatalf("accepted %d uplinks", len(b.PhysicalInterfaces))
			}
			seen := map[string]bool{b.BridgeName: true}
			for _, nic := range b.PhysicalInterfaces {
				if err := ifname.Validate(nic); err != nil || seen[nic] {
					t.Fatalf("accepted uplink %q (err %v, duplicate %v)", nic, err, seen[nic])
				}
				seen[nic] = true
			}
		}
	})
}

// FuzzLoadController checks the controller loader the same way.
func FuzzLoadController(f *testing.F) {
	for _, seed := range []string{
		"",
		"featureGates: {AntreaIPAM: true}\napiPort: 10349\nselfSignedCert: false\nipPoolGC: {interval: 2m, gracePeriod: 0s}\n",
		"ipPoolGC: {interval: 1ns}\n",
		"apiPort: 1e9\n",
		"ipPoolGC: {gracePeriod: -5s}\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := LoadController(data)
		if err != nil {
			return
		}
		if errs := c.Validate(); len(errs) > 0 {
			t.Fatalf("LoadController accepted a configuration Validate rejects: %v", errs.ToAggregate())
		}
		if c.Gates == nil || c.APIPort < 1 || c.APIPort > 65535 || c.IPPoolGC.Interval < minGCInterval || c.IPPoolGC.GracePeriod < 0 {
			t.Fatalf("accepted %+v", c)
		}
	})
}
