package netconf

import (
	"encoding/json"
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podvlan/podvlan/internal/strictjson"
)

// Mode is how this plugin was invoked; see DESIGN.md "Three ways in".
type Mode int

const (
	// ModeChained is type antrea without networkType, chained after the primary plugin. On ADD the
	// agent attaches every network of the Pod's annotation and passes prevResult through.
	ModeChained Mode = iota + 1
	// ModeDelegate is type antrea with networkType vlan, run by Multus for one network with the
	// CNI_IFNAME Multus chose.
	ModeDelegate
	// ModeIPAMOnly is another plugin's configuration whose ipam.type is antrea; allocate and
	// release addresses only.
	ModeIPAMOnly
)

// String names the mode for logs.
func (m Mode) String() string {
	switch m {
	case ModeChained:
		return "chained"
	case ModeDelegate:
		return "delegate"
	case ModeIPAMOnly:
		return "ipam-only"
	default:
		return fmt.Sprintf("Mode(%d)", int(m))
	}
}

// Stdin is a validated configuration as received on stdin.
type Stdin struct {
	// Mode says which of the three ways in this is.
	Mode Mode
	// CNIVersion is the configuration's cniVersion; results must be converted to it.
	CNIVersion string
	// Name is the network name ("name"); Multus sets it to the NetworkAttachmentDefinition's.
	Name string
	// Type is the plugin type: antrea, or the main plugin's in ModeIPAMOnly.
	Type string
	// Network is the network to attach in ModeDelegate; nil otherwise.
	Network *Network
	// IPAM is what to allocate: Network.IPAM in ModeDelegate (possibly nil), the ipam section in
	// ModeIPAMOnly, nil in ModeChained.
	IPAM *IPAM
	// Runtime holds the runtimeConfig requests (ModeDelegate; Multus fills them from the
	// annotation's mac and ips).
	Runtime Runtime
	// PrevResult is the previous plugin's result, raw; required on ADD and CHECK in ModeChained.
	PrevResult json.RawMessage
	// ValidAttachments are the attachments a GC call says are still in use.
	ValidAttachments []Attachment
	// hasGCKeys is true when the configuration has the keys of a GC call.
	hasGCKeys bool
}

// ParseStdin classifies and validates the configuration the runtime passed on stdin, read in one
// strict pass. The error names the field, and the network when the configuration has a name.
func ParseStdin(data []byte) (*Stdin, error) {
	conf, found, err := decode(data, nil)
	if err != nil {
		return nil, fmt.Errorf("invalid CNI configuration: %w", err)
	}
	wrap := func(errs field.ErrorList) error {
		if conf.Name != "" {
			return fmt.Errorf("invalid CNI configuration of network %q: %w", conf.Name, errs.ToAggregate())
		}
		return fmt.Errorf("invalid CNI configuration: %w", errs.ToAggregate())
	}
	mode, err := classify(conf)
	if err != nil {
		return nil, err
	}
	if mode == ModeIPAMOnly && found.WrongType != nil && !isOurs(found.WrongType.Field, nil) {
		// A main plugin's value that does not fit our Config stopped the strict checks; read
		// what is ours alone.
		found = decodeIPAMOnly(data, conf)
	}
	errs := judged(found, nil, mode == ModeIPAMOnly)
	if found.WrongType != nil {
		return nil, wrap(errs)
	}
	out := &Stdin{Mode: mode, CNIVersion: conf.CNIVersion, Name: conf.Name, Type: conf.Type, PrevResult: conf.PrevResult,
		ValidAttachments: slices.Concat(conf.ValidAttachments, conf.DraftValidAttachments),
		hasGCKeys:        conf.ValidAttachments != nil || conf.DraftValidAttachments != nil}
	switch mode {
	case ModeChained:
		errs = append(errs, validateChained(conf)...)
	case ModeDelegate:
		network, networkErrs := validateNetwork(conf, nil)
		errs = append(errs, networkErrs...)
		if network != nil {
			out.Network, out.IPAM = network, network.IPAM
		}
		runtime, runtimeErrs := validateRuntime(conf.RuntimeConfig, field.NewPath("runtimeConfig"))
		errs = append(errs, runtimeErrs...)
		out.Runtime = runtime
	case ModeIPAMOnly:
		errs = append(errs, validateCNIVersion(conf.CNIVersion, field.NewPath("cniVersion"))...)
		ipam, ipamErrs := validateIPAM(conf.IPAM, field.NewPath("ipam"))
		errs = append(errs, ipamErrs...)
		out.IPAM = ipam
	}
	if len(errs) > 0 {
		return nil, wrap(errs)
	}
	return out, nil
}

// ipamOnlyConfig is the part of an IPAM-only configuration that is ours; the rest is the main
// plugin's.
type ipamOnlyConfig struct {
	CNIVersion string      `json:"cniVersion,omitempty"`
	IPAM       *IPAMConfig `json:"ipam,omitempty"`
	GCKeys
}

// decodeIPAMOnly reads the part of data that is ours into conf, for an IPAM-only configuration
// whose main plugin's keys do not fit Config.
func decodeIPAMOnly(data []byte, conf *Config) strictjson.Result {
	var ours ipamOnlyConfig
	// data decoded once already: there is no syntax error to return.
	found, _ := strictjson.Decode(data, &ours, nil)
	conf.CNIVersion, conf.IPAM, conf.GCKeys = ours.CNIVersion, ours.IPAM, ours.GCKeys
	return found
}

// classify decides the mode from type, networkType and ipam.type alone, before validation, so
// that the right rules apply.
func classify(conf *Config) (Mode, error) {
	if conf.Type == PluginType {
		if conf.NetworkType != nil {
			return ModeDelegate, nil
		}
		return ModeChained, nil
	}
	if conf.IPAM != nil && conf.IPAM.Type == IPAMType {
		return ModeIPAMOnly, nil
	}
	if conf.Type == "" {
		return 0, fmt.Errorf(`invalid CNI configuration: type: Required value: "antrea", or another plugin's type with "ipam": {"type": "antrea"}`)
	}
	return 0, fmt.Errorf(`invalid CNI configuration: plugin type %q is not "antrea" and its ipam.type is not "antrea"`, conf.Type)
}

// validateChained checks the chained entry: it takes no network settings, which belong in a
// NetworkAttachmentDefinition; a vlan here most likely means a forgotten networkType.
func validateChained(conf *Config) field.ErrorList {
	errs := validateCNIVersion(conf.CNIVersion, field.NewPath("cniVersion"))
	const detail = `only valid with "networkType": "vlan"; in the chained configuration networks come from the Pod's k8s.v1.cni.cncf.io/networks annotation`
	if conf.VLAN != 0 {
		errs = append(errs, field.Forbidden(field.NewPath("vlan"), detail))
	}
	if conf.MTU != 0 {
		errs = append(errs, field.Forbidden(field.NewPath("mtu"), detail))
	}
	if conf.IPAM != nil {
		errs = append(errs, field.Forbidden(field.NewPath("ipam"), detail))
	}
	return errs
}

// CheckCommand checks what depends on the CNI command: chained ADD and CHECK run after the
// primary plugin and must receive its result; only GC names the attachments to keep.
func (s *Stdin) CheckCommand(command string) error {
	if s.hasGCKeys && command != "GC" && s.Mode != ModeIPAMOnly {
		return fmt.Errorf("invalid CNI configuration: %s: Forbidden: only a CNI GC call lists the attachments to keep", gcKeys[0])
	}
	if s.Mode == ModeChained && (command == "ADD" || command == "CHECK") && !s.HasPrevResult() {
		return fmt.Errorf(`CNI %s without prevResult: a configuration of type "antrea" without networkType must be chained after the primary plugin in a configuration list; for a Multus network add "networkType": "vlan"`, command)
	}
	return nil
}

// HasPrevResult reports whether a previous result was passed (a JSON null counts as none).
func (s *Stdin) HasPrevResult() bool {
	return len(s.PrevResult) > 0 && string(s.PrevResult) != "null"
}
