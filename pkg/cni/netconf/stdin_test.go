package netconf

import (
	"slices"
	"testing"
)

func TestParseStdinModes(t *testing.T) {
	tests := []struct {
		name     string
		config   string
		wantMode Mode
	}{
		{name: "type antrea without networkType is the chained entry",
			config:   `{"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "antrea", "prevResult": {"cniVersion": "1.0.0", "interfaces": []}}`,
			wantMode: ModeChained},
		{name: "type antrea with networkType vlan is a Multus delegate",
			config:   `{"cniVersion": "1.0.0", "name": "vlan100", "type": "antrea", "networkType": "vlan", "vlan": 100}`,
			wantMode: ModeDelegate},
		{name: "another plugin with ipam type antrea is IPAM-only",
			config:   `{"cniVersion": "0.3.1", "name": "mv", "type": "macvlan", "master": "eth0", "mode": "bridge", "ipam": {"type": "antrea", "ippools": ["p"]}}`,
			wantMode: ModeIPAMOnly},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStdin([]byte(tt.config))
			if err != nil {
				t.Fatalf("ParseStdin() = %v", err)
			}
			if got.Mode != tt.wantMode {
				t.Fatalf("Mode = %v, want %v", got.Mode, tt.wantMode)
			}
		})
	}
}

func TestParseStdinChained(t *testing.T) {
	s, err := ParseStdin([]byte(`{"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "antrea", "prevResult": {"ips": []}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.CNIVersion != "1.0.0" || s.Name != "k8s-pod-network" || s.Type != "antrea" || s.Network != nil || s.IPAM != nil {
		t.Fatalf("ParseStdin() = %+v", s)
	}
	if !s.HasPrevResult() || string(s.PrevResult) != `{"ips": []}` {
		t.Fatalf("PrevResult = %s, want it passed through unchanged", s.PrevResult)
	}
	for _, cmd := range []string{"ADD", "CHECK", "DEL"} {
		if err := s.CheckCommand(cmd); err != nil {
			t.Errorf("CheckCommand(%s) = %v", cmd, err)
		}
	}
}

func TestCheckCommandNeedsPrevResultWhenChained(t *testing.T) {
	const want = `CNI ADD without prevResult: a configuration of type "antrea" without networkType must be chained after the primary plugin in a configuration list; for a Multus network add "networkType": "vlan"`
	tests := []struct {
		name    string
		config  string
		command string
		wantErr string
	}{
		{name: "ADD without prevResult", config: `{"cniVersion": "1.0.0", "type": "antrea"}`, command: "ADD", wantErr: want},
		{name: "ADD with a null prevResult", config: `{"cniVersion": "1.0.0", "type": "antrea", "prevResult": null}`, command: "ADD", wantErr: want},
		{name: "CHECK without prevResult", config: `{"cniVersion": "1.0.0", "type": "antrea"}`, command: "CHECK",
			wantErr: `CNI CHECK without prevResult: a configuration of type "antrea" without networkType must be chained after the primary plugin in a configuration list; for a Multus network add "networkType": "vlan"`},
		{name: "DEL without prevResult is fine", config: `{"cniVersion": "1.0.0", "type": "antrea"}`, command: "DEL"},
		{name: "a delegate needs no prevResult", config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan"}`, command: "ADD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseStdin([]byte(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			err = s.CheckCommand(tt.command)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckCommand() = %v", err)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("CheckCommand() = %v, want %s", err, tt.wantErr)
			}
		})
	}
}

func TestParseStdinDelegate(t *testing.T) {
	s, err := ParseStdin([]byte(`{"cniVersion": "1.0.0", "name": "vlan100", "type": "antrea", "networkType": "vlan", "vlan": 100, "mtu": 9000,
		"ipam": {"type": "antrea", "ippools": ["p4"]},
		"runtimeConfig": {"mac": "02:00:00:00:00:01", "ips": ["10.1.1.5/24"], "portMappings": [{"hostPort": 80}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if s.Network == nil || s.Network.Name != "vlan100" || s.Network.Namespace != "" || s.Network.VLAN != 100 || s.Network.MTU != 9000 {
		t.Fatalf("Network = %+v", s.Network)
	}
	if s.Network.Key() != "vlan100" {
		t.Fatalf("Key() = %q", s.Network.Key())
	}
	if s.IPAM != s.Network.IPAM || len(s.IPAM.IPPools) != 1 {
		t.Fatalf("IPAM = %+v", s.IPAM)
	}
	if s.Runtime.MAC.String() != "02:00:00:00:00:01" || len(s.Runtime.IPs) != 1 || s.Runtime.IPs[0].String() != "10.1.1.5/24" {
		t.Fatalf("Runtime = %+v", s.Runtime)
	}
}

func TestParseStdinIPAMOnly(t *testing.T) {
	s, err := ParseStdin([]byte(`{"cniVersion": "0.3.1", "name": "mv", "type": "macvlan", "master": "eth0", "master": "eth1",
		"whatever": {"x": 1}, "ipam": {"type": "antrea", "ippools": ["p4", "p6"], "routes": [{"dst": "0.0.0.0/0"}]}}`))
	if err != nil {
		t.Fatalf("ParseStdin() = %v; the main plugin's keys are not ours to judge", err)
	}
	if s.Type != "macvlan" || s.Name != "mv" || s.Network != nil || s.IPAM == nil || len(s.IPAM.IPPools) != 2 || len(s.IPAM.Routes) != 1 {
		t.Fatalf("ParseStdin() = %+v (ipam %+v)", s, s.IPAM)
	}
}

func TestParseStdinRejects(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   string
	}{
		{name: "not JSON", config: `{`,
			want: `invalid CNI configuration: configuration: not valid JSON at byte 1: unexpected end of JSON input`},
		{name: "not an object", config: `"antrea"`,
			want: `invalid CNI configuration: configuration: must be a JSON object`},
		{name: "no type", config: `{"cniVersion": "1.0.0"}`,
			want: `invalid CNI configuration: type: Required value: "antrea", or another plugin's type with "ipam": {"type": "antrea"}`},
		{name: "another plugin with another IPAM", config: `{"cniVersion": "1.0.0", "type": "macvlan", "ipam": {"type": "host-local"}}`,
			want: `invalid CNI configuration: plugin type "macvlan" is not "antrea" and its ipam.type is not "antrea"`},
		{name: "chained entry with a vlan (a forgotten networkType)", config: `{"cniVersion": "1.0.0", "name": "x", "type": "antrea", "vlan": 100}`,
			want: `invalid CNI configuration of network "x": vlan: Forbidden: only valid with "networkType": "vlan"; in the chained configuration networks come from the Pod's k8s.v1.cni.cncf.io/networks annotation`},
		{name: "chained entry with an mtu", config: `{"cniVersion": "1.0.0", "type": "antrea", "mtu": 1400}`,
			want: `invalid CNI configuration: mtu: Forbidden: only valid with "networkType": "vlan"; in the chained configuration networks come from the Pod's k8s.v1.cni.cncf.io/networks annotation`},
		{name: "chained entry with ipam", config: `{"cniVersion": "1.0.0", "type": "antrea", "ipam": {"type": "antrea", "ippools": ["p"]}}`,
			want: `invalid CNI configuration: ipam: Forbidden: only valid with "networkType": "vlan"; in the chained configuration networks come from the Pod's k8s.v1.cni.cncf.io/networks annotation`},
		{name: "chained entry with an old cniVersion", config: `{"cniVersion": "0.2.0", "type": "antrea"}`,
			want: `invalid CNI configuration: cniVersion: Unsupported value: "0.2.0": supported values: "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"`},
		{name: "delegate of an unsupported networkType", config: `{"cniVersion": "1.0.0", "name": "n", "type": "antrea", "networkType": "sriov"}`,
			want: `invalid CNI configuration of network "n": networkType: Unsupported value: "sriov": supported values: "vlan"`},
		{name: "delegate with an empty networkType", config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": ""}`,
			want: `invalid CNI configuration: networkType: Required value: set "networkType": "vlan"`},
		{name: "delegate with a multicast runtime MAC", config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "runtimeConfig": {"mac": "01:00:00:00:00:01"}}`,
			want: `invalid CNI configuration: runtimeConfig.mac: Invalid value: "01:00:00:00:00:01": is a multicast address (the lowest bit of the first byte is set); an interface needs a unicast MAC`},
		{name: "delegate with a bad runtime IP", config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "runtimeConfig": {"ips": ["10.0.0.300"]}}`,
			want: `invalid CNI configuration: runtimeConfig.ips[0]: Invalid value: "10.0.0.300": not an IP address (e.g. 10.1.1.5, 10.1.1.5/24 or 2001:db8::5/64)`},
		{name: "delegate with a runtime IP twice", config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "runtimeConfig": {"ips": ["10.0.0.3/24", "10.0.0.3"]}}`,
			want: `invalid CNI configuration: runtimeConfig.ips[1]: Duplicate value: "10.0.0.3"`},
		{name: "delegate with runtime IPs of the wrong type", config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "runtimeConfig": {"ips": "10.0.0.3"}}`,
			want: `invalid CNI configuration: runtimeConfig.ips: Invalid value: "10.0.0.3": must be a list`},
		{name: "delegate with a misspelt key", config: `{"cniVersion": "1.0.0", "type": "antrea", "networkType": "vlan", "mut": 1400}`,
			want: `invalid CNI configuration: mut: Forbidden: unknown field; did you mean "mtu"?`},
		{name: "IPAM-only without pools or addresses", config: `{"cniVersion": "1.0.0", "name": "mv", "type": "macvlan", "ipam": {"type": "antrea"}}`,
			want: `invalid CNI configuration of network "mv": ipam.ippools: Required value: an ipam section needs ippools and/or addresses; remove ipam for an interface without addresses`},
		{name: "IPAM-only with an unknown ipam key", config: `{"cniVersion": "1.0.0", "type": "macvlan", "ipam": {"type": "antrea", "ippools": ["p"], "vlan": 5}}`,
			want: `invalid CNI configuration: ipam.vlan: Forbidden: unknown field`},
		{name: "IPAM-only with a key twice in ipam", config: `{"cniVersion": "1.0.0", "type": "macvlan", "ipam": {"type": "antrea", "ippools": ["p"], "ippools": ["q"]}}`,
			want: `invalid CNI configuration: ipam.ippools: Forbidden: key given twice`},
		{name: "IPAM-only without cniVersion", config: `{"type": "macvlan", "ipam": {"type": "antrea", "ippools": ["p"]}}`,
			want: `invalid CNI configuration: cniVersion: Required value: one of 0.3.0, 0.3.1, 0.4.0, 1.0.0, 1.1.0`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStdin([]byte(tt.config))
			if err == nil {
				t.Fatalf("ParseStdin() = %+v, want error", got)
			}
			if err.Error() != tt.want {
				t.Fatalf("ParseStdin() error =\n  %s\nwant\n  %s", err, tt.want)
			}
		})
	}
}

func TestModeString(t *testing.T) {
	for mode, want := range map[Mode]string{ModeChained: "chained", ModeDelegate: "delegate", ModeIPAMOnly: "ipam-only", Mode(9): "Mode(9)"} {
		if got := mode.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(mode), got, want)
		}
	}
}

// Bug: the agent took "networkType": null for a Multus delegate and refused it, while the shim
// (like encoding/json) reads null as absent and answers it as the chained entry; the two agree now.
func TestParseStdinReadsANullNetworkTypeAsAbsent(t *testing.T) {
	s, err := ParseStdin([]byte(`{"cniVersion": "1.0.0", "type": "antrea", "networkType": null, "prevResult": {}}`))
	if err != nil || s.Mode != ModeChained {
		t.Fatalf("ParseStdin() = %+v, %v; want the chained entry", s, err)
	}
}

// Bug: in an IPAM-only configuration, keys given twice were judged below ipam but not the ipam
// section itself, so a second section silently replaced the first.
func TestParseStdinIPAMOnlyRefusesTwoIPAMSections(t *testing.T) {
	_, err := ParseStdin([]byte(`{"cniVersion": "1.0.0", "type": "macvlan", "ipam": {"type": "antrea", "ippools": ["p"]}, "ipam": {"type": "antrea", "ippools": ["q"]}}`))
	if want := `invalid CNI configuration: ipam: Forbidden: key given twice`; err == nil || err.Error() != want {
		t.Fatalf("ParseStdin() error = %v, want %s", err, want)
	}
}

func TestParseStdinIPAMOnlyLeavesTheMainPluginsValuesAlone(t *testing.T) {
	// mtu, vlan and runtimeConfig.ips mean something else to us; here they are macvlan's.
	const head = `{"cniVersion": "1.0.0", "type": "macvlan", "mtu": "1500", "vlan": [5], "runtimeConfig": {"ips": "x"}, `
	s, err := ParseStdin([]byte(head + `"ipam": {"type": "antrea", "ippools": ["p"]}}`))
	if err != nil || s.Mode != ModeIPAMOnly || s.IPAM == nil || s.IPAM.IPPools[0] != "p" {
		t.Fatalf("ParseStdin() = %+v, %v", s, err)
	}
	_, err = ParseStdin([]byte(head + `"ipam": {"type": "antrea", "ippools": ["p"], "pools": 1}}`))
	if want := `invalid CNI configuration: ipam.pools: Forbidden: unknown field; did you mean "ippools"?`; err == nil || err.Error() != want {
		t.Fatalf("ParseStdin() error = %v, want %s", err, want)
	}
	_, err = ParseStdin([]byte(head + `"ipam": {"type": "antrea", "ippools": "p"}}`))
	if want := `invalid CNI configuration: ipam.ippools: Invalid value: "p": must be a list`; err == nil || err.Error() != want {
		t.Fatalf("ParseStdin() error = %v, want %s", err, want)
	}
}

func TestParseStdinReadsTheAttachmentsOfAGCCall(t *testing.T) {
	const attachments = `"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "net1", "future": true}], "cni.dev/attachments": [{"containerID": "c2", "ifname": "eth0"}]`
	tests := []struct {
		name, config string
	}{
		{name: "chained", config: `{"cniVersion": "1.1.0", "type": "antrea", ` + attachments + `}`},
		{name: "delegate", config: `{"cniVersion": "1.1.0", "name": "n", "type": "antrea", "networkType": "vlan", ` + attachments + `}`},
		{name: "IPAM-only, with a main plugin's value that does not fit our Config",
			config: `{"cniVersion": "1.1.0", "type": "macvlan", "mtu": "x", "ipam": {"type": "antrea", "ippools": ["p"]}, ` + attachments + `}`},
	}
	want := []Attachment{{ContainerID: "c1", IfName: "net1"}, {ContainerID: "c2", IfName: "eth0"}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseStdin([]byte(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(s.ValidAttachments, want) {
				t.Fatalf("ValidAttachments = %+v, want %+v", s.ValidAttachments, want)
			}
			if err := s.CheckCommand("GC"); err != nil {
				t.Fatalf("CheckCommand(GC) = %v", err)
			}
			if err := s.CheckCommand("DEL"); (err == nil) != (s.Mode == ModeIPAMOnly) {
				t.Fatalf("CheckCommand(DEL) = %v in mode %v", err, s.Mode)
			}
		})
	}
	s, _ := ParseStdin([]byte(`{"cniVersion": "1.1.0", "type": "antrea", "cni.dev/valid-attachments": []}`))
	want2 := `invalid CNI configuration: cni.dev/valid-attachments: Forbidden: only a CNI GC call lists the attachments to keep`
	if err := s.CheckCommand("ADD"); err == nil || err.Error() != want2 {
		t.Fatalf("CheckCommand(ADD) = %v, want %s", err, want2)
	}
	_, err := ParseStdin([]byte(`{"cniVersion": "1.1.0", "type": "antrea", "cni.dev/valid-attachments": {"containerID": "c1"}}`))
	if want := `invalid CNI configuration: cni.dev/valid-attachments: Invalid value: "{...}": must be a list`; err == nil || err.Error() != want {
		t.Fatalf("ParseStdin() error = %v, want %s", err, want)
	}
}
