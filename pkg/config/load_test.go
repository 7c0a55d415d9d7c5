package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLoadAgentAccepts(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Agent
	}{
		{name: "empty document gives the defaults", yaml: "",
			want: Agent{OVSDatapathType: DatapathSystem, OVSRunDir: DefaultOVSRunDir, CNISocket: DefaultCNISocket}},
		{name: "comments only give the defaults", yaml: "# nothing set\n",
			want: Agent{OVSDatapathType: DatapathSystem, OVSRunDir: DefaultOVSRunDir, CNISocket: DefaultCNISocket}},
		{name: "contract example", yaml: `
featureGates:
  SecondaryNetwork: true
  AntreaIPAM: true
secondaryNetwork:
  ovsBridges:
  - bridgeName: br-secondary
    physicalInterfaces: [eth1]
`,
			want: Agent{
				FeatureGates:    map[string]bool{"SecondaryNetwork": true, "AntreaIPAM": true},
				OVSDatapathType: DatapathSystem, OVSRunDir: DefaultOVSRunDir, CNISocket: DefaultCNISocket,
				SecondaryNetwork: SecondaryNetworkConfig{OVSBridges: []OVSBridge{{BridgeName: "br-secondary", PhysicalInterfaces: []string{"eth1"}}}},
			}},
		{name: "every field set", yaml: `
ovsDatapathType: netdev
ovsRunDir: /run/ovs
cniSocket: /run/podvlan/cni.sock
clientConnection: {kubeconfig: /etc/kubeconfig}
secondaryNetwork:
  ovsBridges:
  - bridgeName: br-sec
    physicalInterfaces: [ens1, ens2, ens3, ens4, ens5, ens6, ens7, ens8]
`,
			want: Agent{
				OVSDatapathType: DatapathNetdev, OVSRunDir: "/run/ovs", CNISocket: "/run/podvlan/cni.sock",
				ClientConnection: ClientConnection{Kubeconfig: "/etc/kubeconfig"},
				SecondaryNetwork: SecondaryNetworkConfig{OVSBridges: []OVSBridge{{BridgeName: "br-sec",
					PhysicalInterfaces: []string{"ens1", "ens2", "ens3", "ens4", "ens5", "ens6", "ens7", "ens8"}}}},
			}},
		{name: "bridge without uplinks", yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-local}]}\n",
			want: Agent{OVSDatapathType: DatapathSystem, OVSRunDir: DefaultOVSRunDir, CNISocket: DefaultCNISocket,
				SecondaryNetwork: SecondaryNetworkConfig{OVSBridges: []OVSBridge{{BridgeName: "br-local"}}}}},
		{name: "null values mean unset", yaml: "ovsRunDir: null\nsecondaryNetwork: ~\n",
			want: Agent{OVSDatapathType: DatapathSystem, OVSRunDir: DefaultOVSRunDir, CNISocket: DefaultCNISocket}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadAgent([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("LoadAgent() = %v", err)
			}
			if got.Gates == nil {
				t.Fatalf("LoadAgent() left Gates nil")
			}
			got.Gates = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("LoadAgent() =\n  %+v\nwant\n  %+v", *got, tt.want)
			}
		})
	}
}

func TestLoadAgentRejects(t *testing.T) {
	const prefix = "invalid antrea-agent.conf: "
	tests := []struct {
		name string
		yaml string
		want string // without the prefix
	}{
		{name: "top-level ovsBridges says it belongs under secondaryNetwork",
			yaml: "ovsBridges:\n- bridgeName: br-sec\n",
			want: "ovsBridges: Forbidden: unknown field; it belongs under secondaryNetwork: write secondaryNetwork.ovsBridges"},
		{name: "top-level physicalInterfaces says it belongs to a bridge",
			yaml: "physicalInterfaces: [eth1]\n",
			want: "physicalInterfaces: Forbidden: unknown field; it belongs to a bridge: write secondaryNetwork.ovsBridges[0].physicalInterfaces"},
		{name: "top-level bridgeName says it belongs to a bridge",
			yaml: "bridgeName: br-sec\n",
			want: "bridgeName: Forbidden: unknown field; it belongs to a bridge: write secondaryNetwork.ovsBridges[0].bridgeName"},
		{name: "bridgeName directly under secondaryNetwork says it belongs to a bridge",
			yaml: "secondaryNetwork: {bridgeName: br-sec}\n",
			want: "secondaryNetwork.bridgeName: Forbidden: unknown field; it belongs to a bridge: write secondaryNetwork.ovsBridges[0].bridgeName"},
		{name: "physicalInterfaces directly under secondaryNetwork says it belongs to a bridge",
			yaml: "secondaryNetwork: {physicalInterfaces: [eth1]}\n",
			want: "secondaryNetwork.physicalInterfaces: Forbidden: unknown field; it belongs to a bridge: write secondaryNetwork.ovsBridges[0].physicalInterfaces"},
		{name: "top-level kubeconfig says it belongs under clientConnection",
			yaml: "kubeconfig: /etc/k\n",
			want: "kubeconfig: Forbidden: unknown field; it belongs under clientConnection: write clientConnection.kubeconfig"},
		{name: "a gate at the top level says it is a feature gate",
			yaml: "SecondaryNetwork: true\n",
			want: "SecondaryNetwork: Forbidden: unknown field; it is a feature gate: write featureGates.SecondaryNetwork"},
		{name: "AntreaIPAM at the top level says it is a feature gate",
			yaml: "AntreaIPAM: true\n",
			want: "AntreaIPAM: Forbidden: unknown field; it is a feature gate: write featureGates.AntreaIPAM"},
		{name: "a controller setting says which file it belongs to",
			yaml: "apiPort: 10349\n",
			want: "apiPort: Forbidden: unknown field; it is a setting of antrea-controller.conf"},
		{name: "a key in the wrong case suggests the right one",
			yaml: "featuregates: {SecondaryNetwork: true}\n",
			want: `featuregates: Forbidden: unknown field; did you mean "featureGates"?`},
		{name: "a misspelt nested key suggests the right one with its path",
			yaml: "secondaryNetwork:\n  ovsBridges:\n  - bridgeName: br-sec\n    physicalInterface: [eth1]\n",
			want: `secondaryNetwork.ovsBridges[0].physicalInterface: Forbidden: unknown field; did you mean "physicalInterfaces"?`},
		{name: "an unrelated unknown key is named",
			yaml: "trafficEncapMode: encap\n",
			want: "trafficEncapMode: Forbidden: unknown field"},
		{name: "every unknown key is named",
			yaml: "foo: 1\nbar: 2\n",
			want: "[bar: Forbidden: unknown field, foo: Forbidden: unknown field]"},
		{name: "unknown feature gates are named, each",
			yaml: "featureGates: {Foo: true, SecondaryNetwork: true, Bar: false}\n",
			want: `[featureGates[Bar]: Unsupported value: "Bar": supported values: "AllAlpha", "AllBeta", "AntreaIPAM", "IPPoolBlocks", "SecondaryNetwork", "SecondaryNetworkHotplug", featureGates[Foo]: Unsupported value: "Foo": supported values: "AllAlpha", "AllBeta", "AntreaIPAM", "IPPoolBlocks", "SecondaryNetwork", "SecondaryNetworkHotplug"]`},
		{name: "a gate value must be a boolean",
			yaml: "featureGates: {SecondaryNetwork: \"yes please\"}\n",
			want: `featureGates[SecondaryNetwork]: Invalid value: "yes please": must be true or false`},
		{name: "featureGates must be a map",
			yaml: "featureGates: [SecondaryNetwork]\n",
			want: `featureGates: Invalid value: "[...]": must be a map of keys to values`},
		{name: "a scalar where a list is expected",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-sec, physicalInterfaces: eth1}]}\n",
			want: `secondaryNetwork.ovsBridges[0].physicalInterfaces: Invalid value: "eth1": must be a list`},
		{name: "a number where a string is expected",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: 42}]}\n",
			want: "secondaryNetwork.ovsBridges[0].bridgeName: Invalid value: 42: must be a string"},
		{name: "unsupported datapath",
			yaml: "ovsDatapathType: dpdk\n",
			want: `ovsDatapathType: Unsupported value: "dpdk": supported values: "system", "netdev"`},
		{name: "relative ovsRunDir",
			yaml: "ovsRunDir: run/ovs\n",
			want: `ovsRunDir: Invalid value: "run/ovs": must be an absolute path`},
		{name: "relative cniSocket",
			yaml: "cniSocket: cni.sock\n",
			want: `cniSocket: Invalid value: "cni.sock": must be an absolute path`},
		{name: "cniSocket too long for a unix socket",
			yaml: "cniSocket: /" + strings.Repeat("a", 107) + "\n",
			want: `cniSocket: Invalid value: "/` + strings.Repeat("a", 107) + `": a unix socket path must be at most 107 bytes, this one is 108`},
		{name: "two bridges",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-a}, {bridgeName: br-b}]}\n",
			want: `secondaryNetwork.ovsBridges[1]: Invalid value: "br-b": at most 1 OVS bridge is supported`},
		{name: "bridge without a name",
			yaml: "secondaryNetwork: {ovsBridges: [{physicalInterfaces: [eth1]}]}\n",
			want: "secondaryNetwork.ovsBridges[0].bridgeName: Required value: the secondary bridge needs a name, e.g. br-secondary"},
		{name: "bridge name too long",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-secondary-net}]}\n",
			want: `secondaryNetwork.ovsBridges[0].bridgeName: Invalid value: "br-secondary-net": not a valid interface name: must be at most 15 characters, not 16`},
		{name: "bridge name with a slash",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br/sec}]}\n",
			want: `secondaryNetwork.ovsBridges[0].bridgeName: Invalid value: "br/sec": not a valid interface name: must not contain '/'`},
		{name: "bridge named after the OVS datapath device",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: ovs-system}]}\n",
			want: `secondaryNetwork.ovsBridges[0].bridgeName: Invalid value: "ovs-system": is reserved by Open vSwitch`},
		{name: "nine uplinks",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-sec, physicalInterfaces: [e1, e2, e3, e4, e5, e6, e7, e8, e9]}]}\n",
			want: `secondaryNetwork.ovsBridges[0].physicalInterfaces[8]: Invalid value: "e9": at most 8 physical interfaces`},
		{name: "invalid uplink name",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-sec, physicalInterfaces: [\"eth 1\"]}]}\n",
			want: `secondaryNetwork.ovsBridges[0].physicalInterfaces[0]: Invalid value: "eth 1": not a valid interface name: must not contain white space`},
		{name: "empty uplink name",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-sec, physicalInterfaces: [\"\"]}]}\n",
			want: `secondaryNetwork.ovsBridges[0].physicalInterfaces[0]: Invalid value: "": not a valid interface name: must not be empty`},
		{name: "duplicate uplink",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-sec, physicalInterfaces: [eth1, eth2, eth1]}]}\n",
			want: `secondaryNetwork.ovsBridges[0].physicalInterfaces[2]: Duplicate value: "eth1"`},
		{name: "uplink that is the bridge",
			yaml: "secondaryNetwork: {ovsBridges: [{bridgeName: br-sec, physicalInterfaces: [br-sec]}]}\n",
			want: `secondaryNetwork.ovsBridges[0].physicalInterfaces[0]: Invalid value: "br-sec": is the bridge itself, not an uplink`},
		{name: "duplicate key",
			yaml: "ovsRunDir: /a\novsRunDir: /b\n",
			want: "not valid YAML: yaml: unmarshal errors:\n  line 2: key \"ovsRunDir\" already set in map"},
		{name: "broken YAML",
			yaml: "secondaryNetwork: [\n",
			want: "not valid YAML: yaml: line 1: did not find expected node content"},
		{name: "a list instead of a mapping",
			yaml: "- ovsBridges\n",
			want: "the document must be a mapping of settings (key: value lines), not a list"},
		{name: "a bare word instead of a mapping",
			yaml: "SecondaryNetwork\n",
			want: "the document must be a mapping of settings (key: value lines), not a string"},
		{name: "every problem is reported at once",
			yaml: "ovsDatapathType: dpdk\nsecondaryNetwork: {ovsBridges: [{bridgeName: \"\", physicalInterfaces: [a, a]}]}\n",
			want: `[ovsDatapathType: Unsupported value: "dpdk": supported values: "system", "netdev", secondaryNetwork.ovsBridges[0].bridgeName: Required value: the secondary bridge needs a name, e.g. br-secondary, secondaryNetwork.ovsBridges[0].physicalInterfaces[1]: Duplicate value: "a"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadAgent([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("LoadAgent() = %+v, want error %q", got, tt.want)
			}
			if err.Error() != prefix+tt.want {
				t.Fatalf("LoadAgent() error =\n  %s\nwant\n  %s", err, prefix+tt.want)
			}
		})
	}
}

func TestLoadControllerAccepts(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want Controller
	}{
		{name: "empty document gives the defaults", yaml: "",
			want: Controller{APIPort: DefaultAPIPort, SelfSignedCert: true,
				IPPoolGC: IPPoolGC{Interval: DefaultIPPoolGCInterval, GracePeriod: DefaultIPPoolGracePeriod}}},
		{name: "contract example", yaml: "featureGates:\n  AntreaIPAM: true\n",
			want: Controller{FeatureGates: map[string]bool{"AntreaIPAM": true}, APIPort: DefaultAPIPort, SelfSignedCert: true,
				IPPoolGC: IPPoolGC{Interval: DefaultIPPoolGCInterval, GracePeriod: DefaultIPPoolGracePeriod}}},
		{name: "explicit false and zero are kept", yaml: `
apiPort: 8443
selfSignedCert: false
clientConnection: {kubeconfig: /k}
ipPoolGC: {interval: 30s, gracePeriod: 0s}
`,
			want: Controller{APIPort: 8443, SelfSignedCert: false, ClientConnection: ClientConnection{Kubeconfig: "/k"},
				IPPoolGC: IPPoolGC{Interval: 30 * time.Second, GracePeriod: 0}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadController([]byte(tt.yaml))
			if err != nil {
				t.Fatalf("LoadController() = %v", err)
			}
			if got.Gates == nil {
				t.Fatalf("LoadController() left Gates nil")
			}
			got.Gates = nil
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("LoadController() =\n  %+v\nwant\n  %+v", *got, tt.want)
			}
		})
	}
}

func TestLoadControllerRejects(t *testing.T) {
	const prefix = "invalid antrea-controller.conf: "
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{name: "agent settings say which file they belong to",
			yaml: "secondaryNetwork: {}\n",
			want: "secondaryNetwork: Forbidden: unknown field; it is a setting of antrea-agent.conf"},
		{name: "top-level ovsBridges says it is an agent setting",
			yaml: "ovsBridges: []\n",
			want: "ovsBridges: Forbidden: unknown field; it is a setting of antrea-agent.conf (under secondaryNetwork)"},
		{name: "top-level interval says it belongs under ipPoolGC",
			yaml: "interval: 1m\n",
			want: "interval: Forbidden: unknown field; it belongs under ipPoolGC: write ipPoolGC.interval"},
		{name: "a key in the wrong case suggests the right one",
			yaml: "ipPoolGC: {Interval: 1m}\n",
			want: `ipPoolGC.Interval: Forbidden: unknown field; did you mean "interval"?`},
		{name: "port 0",
			yaml: "apiPort: 0\n",
			want: "apiPort: Invalid value: 0: must be a port number between 1 and 65535"},
		{name: "port 65536",
			yaml: "apiPort: 65536\n",
			want: "apiPort: Invalid value: 65536: must be a port number between 1 and 65535"},
		{name: "port as a string",
			yaml: "apiPort: \"10349\"\n",
			want: `apiPort: Invalid value: "10349": must be an integer`},
		{name: "fractional port",
			yaml: "apiPort: 10349.5\n",
			want: "apiPort: Invalid value: 10349.5: must be an integer"},
		{name: "selfSignedCert as a string",
			yaml: "selfSignedCert: \"false\"\n",
			want: `selfSignedCert: Invalid value: "false": must be true or false`},
		{name: "interval without a unit",
			yaml: "ipPoolGC: {interval: 120}\n",
			want: `ipPoolGC.interval: Invalid value: 120: must be a duration such as "90s" or "2m"`},
		{name: "interval that does not parse",
			yaml: "ipPoolGC: {interval: two minutes}\n",
			want: `ipPoolGC.interval: Invalid value: "two minutes": must be a duration such as "90s" or "2m"`},
		{name: "interval below a second",
			yaml: "ipPoolGC: {interval: 2ms}\n",
			want: `ipPoolGC.interval: Invalid value: "2ms": must be at least 1s`},
		{name: "negative grace period",
			yaml: "ipPoolGC: {gracePeriod: -1m}\n",
			want: `ipPoolGC.gracePeriod: Invalid value: "-1m0s": must not be negative`},
		{name: "unknown feature gate",
			yaml: "featureGates: {Multicast: true}\n",
			want: `featureGates[Multicast]: Unsupported value: "Multicast": supported values: "AllAlpha", "AllBeta", "AntreaIPAM", "IPPoolBlocks", "SecondaryNetwork", "SecondaryNetworkHotplug"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadController([]byte(tt.yaml))
			if err == nil {
				t.Fatalf("LoadController() = %+v, want error %q", got, tt.want)
			}
			if err.Error() != prefix+tt.want {
				t.Fatalf("LoadController() error =\n  %s\nwant\n  %s", err, prefix+tt.want)
			}
		})
	}
}

func TestLoadFiles(t *testing.T) {
	dir := t.TempDir()
	agentPath := filepath.Join(dir, "antrea-agent.conf")
	controllerPath := filepath.Join(dir, "antrea-controller.conf")
	badPath := filepath.Join(dir, "bad.conf")
	for path, content := range map[string]string{
		agentPath:      "featureGates: {SecondaryNetwork: true}\n",
		controllerPath: "apiPort: 9443\n",
		badPath:        "ovsBridges: []\n",
	} {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("agent file is loaded", func(t *testing.T) {
		a, err := LoadAgentFile(agentPath)
		if err != nil || !a.Gates.Enabled(SecondaryNetwork) {
			t.Fatalf("LoadAgentFile() = %+v, %v", a, err)
		}
	})
	t.Run("controller file is loaded", func(t *testing.T) {
		c, err := LoadControllerFile(controllerPath)
		if err != nil || c.APIPort != 9443 {
			t.Fatalf("LoadControllerFile() = %+v, %v", c, err)
		}
	})
	t.Run("an invalid file is named in the error", func(t *testing.T) {
		_, err := LoadAgentFile(badPath)
		want := badPath + ": invalid antrea-agent.conf: ovsBridges: Forbidden: unknown field; it belongs under secondaryNetwork: write secondaryNetwork.ovsBridges"
		if err == nil || err.Error() != want {
			t.Fatalf("LoadAgentFile() error = %v, want %s", err, want)
		}
	})
	t.Run("a missing agent file is reported", func(t *testing.T) {
		_, err := LoadAgentFile(filepath.Join(dir, "missing"))
		if err == nil || !strings.HasPrefix(err.Error(), "read agent configuration: open ") {
			t.Fatalf("LoadAgentFile() error = %v", err)
		}
	})
	t.Run("a missing controller file is reported", func(t *testing.T) {
		_, err := LoadControllerFile(filepath.Join(dir, "missing"))
		if err == nil || !strings.HasPrefix(err.Error(), "read controller configuration: open ") {
			t.Fatalf("LoadControllerFile() error = %v", err)
		}
	})
	t.Run("an invalid controller file is named in the error", func(t *testing.T) {
		_, err := LoadControllerFile(badPath)
		want := badPath + ": invalid antrea-controller.conf: ovsBridges: Forbidden: unknown field; it is a setting of antrea-agent.conf (under secondaryNetwork)"
		if err == nil || err.Error() != want {
			t.Fatalf("LoadControllerFile() error = %v, want %s", err, want)
		}
	})
}

func TestAgentBridge(t *testing.T) {
	a, err := LoadAgent([]byte("secondaryNetwork: {ovsBridges: [{bridgeName: br-sec}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := a.Bridge(); !ok || b.BridgeName != "br-sec" {
		t.Fatalf("Bridge() = %+v, %v", b, ok)
	}
	a, err = LoadAgent(nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, ok := a.Bridge(); ok {
		t.Fatalf("Bridge() = %+v, true for a configuration without bridges", b)
	}
}
