package config

import (
	"testing"
)

func TestFeatureGates(t *testing.T) {
	tests := []struct {
		name                 string
		yaml                 string
		wantSecondaryNetwork bool
		wantAntreaIPAM       bool
		wantHotplug          bool
		wantBlocks           bool
	}{
		{name: "the Antrea gates are off and IPPoolBlocks on by default", yaml: "", wantBlocks: true},
		{name: "SecondaryNetwork can be enabled alone", yaml: "featureGates: {SecondaryNetwork: true}\n", wantSecondaryNetwork: true, wantBlocks: true},
		{name: "AntreaIPAM can be enabled alone", yaml: "featureGates: {AntreaIPAM: true}\n", wantAntreaIPAM: true, wantBlocks: true},
		{name: "explicit false keeps a gate off", yaml: "featureGates: {SecondaryNetwork: false}\n", wantBlocks: true},
		{name: "SecondaryNetworkHotplug can be enabled", yaml: "featureGates: {SecondaryNetwork: true, SecondaryNetworkHotplug: true}\n",
			wantSecondaryNetwork: true, wantHotplug: true, wantBlocks: true},
		{name: "AllAlpha enables every alpha gate", yaml: "featureGates: {AllAlpha: true}\n", wantSecondaryNetwork: true, wantAntreaIPAM: true,
			wantHotplug: true, wantBlocks: true},
		{name: "AllAlpha: false leaves IPPoolBlocks on", yaml: "featureGates: {AllAlpha: false}\n", wantBlocks: true},
		{name: "IPPoolBlocks can be turned off", yaml: "featureGates: {IPPoolBlocks: false}\n"},
		{name: "AllBeta: false turns IPPoolBlocks off", yaml: "featureGates: {AllBeta: false}\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := LoadAgent([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := a.Gates.Enabled(SecondaryNetwork); got != tt.wantSecondaryNetwork {
				t.Errorf("agent SecondaryNetwork = %v, want %v", got, tt.wantSecondaryNetwork)
			}
			if got := a.Gates.Enabled(AntreaIPAM); got != tt.wantAntreaIPAM {
				t.Errorf("agent AntreaIPAM = %v, want %v", got, tt.wantAntreaIPAM)
			}
			if got := a.Gates.Enabled(SecondaryNetworkHotplug); got != tt.wantHotplug {
				t.Errorf("agent SecondaryNetworkHotplug = %v, want %v", got, tt.wantHotplug)
			}
			if got := a.Gates.Enabled(IPPoolBlocks); got != tt.wantBlocks {
				t.Errorf("agent IPPoolBlocks = %v, want %v", got, tt.wantBlocks)
			}
			c, err := LoadController([]byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Gates.Enabled(AntreaIPAM); got != tt.wantAntreaIPAM {
				t.Errorf("controller AntreaIPAM = %v, want %v", got, tt.wantAntreaIPAM)
			}
		})
	}
}

func TestEachLoadedConfigurationHasItsOwnGates(t *testing.T) {
	on, err := LoadAgent([]byte("featureGates: {SecondaryNetwork: true}\n"))
	if err != nil {
		t.Fatal(err)
	}
	off, err := LoadAgent(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !on.Gates.Enabled(SecondaryNetwork) || off.Gates.Enabled(SecondaryNetwork) {
		t.Fatalf("gates leak between configurations: on=%v off=%v",
			on.Gates.Enabled(SecondaryNetwork), off.Gates.Enabled(SecondaryNetwork))
	}
}

func TestNewFeatureGates(t *testing.T) {
	gates, err := NewFeatureGates(map[string]bool{"AntreaIPAM": true})
	if err != nil {
		t.Fatal(err)
	}
	if !gates.Enabled(AntreaIPAM) || gates.Enabled(SecondaryNetwork) {
		t.Fatalf("NewFeatureGates() set %v", gates)
	}
	_, err = NewFeatureGates(map[string]bool{"Nope": true})
	want := `featureGates[Nope]: Unsupported value: "Nope": supported values: "AllAlpha", "AllBeta", "AntreaIPAM", "IPPoolBlocks", "SecondaryNetwork", "SecondaryNetworkHotplug"`
	if err == nil || err.Error() != want {
		t.Fatalf("NewFeatureGates() error = %v, want %s", err, want)
	}
}

func TestGateDisabledError(t *testing.T) {
	got := GateDisabledError(SecondaryNetwork, AgentFileName).Error()
	want := "feature gate SecondaryNetwork is disabled: set featureGates.SecondaryNetwork: true in antrea-agent.conf"
	if got != want {
		t.Fatalf("GateDisabledError() = %q, want %q", got, want)
	}
}
