package config

import (
	"fmt"
	"slices"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/component-base/featuregate"
	"k8s.io/klog/v2"
)

const (
	// SecondaryNetwork lets the agent create the secondary OVS bridge and attach VLAN networks to
	// Pods. Without it the agent touches no secondary bridge and refuses secondary requests.
	SecondaryNetwork featuregate.Feature = "SecondaryNetwork"
	// AntreaIPAM lets networks take addresses from IPPools (an `ipam` section of type antrea).
	AntreaIPAM featuregate.Feature = "AntreaIPAM"
	// SecondaryNetworkHotplug lets the agent change the secondary networks of a running Pod when
	// its k8s.v1.cni.cncf.io/networks annotation changes: entries added are attached, entries
	// removed are detached. It is ours, not Antrea's. Without it only the first attachment of a
	// running Pod (the annotation added after the Pod started) is applied, as Antrea does.
	SecondaryNetworkHotplug featuregate.Feature = "SecondaryNetworkHotplug"
	// IPPoolBlocks has the agent allocate inside per-Node address blocks (IPPoolBlock objects),
	// with no API write per Pod. It is ours, and on by default. Without it every allocation is an
	// entry of the IPPool's status.ipAddresses, as in Antrea.
	IPPoolBlocks featuregate.Feature = "IPPoolBlocks"
)

// features is the single list of gates both components know. The Antrea ones are alpha and off by
// default, as in Antrea, so that a cluster upgraded to this agent changes nothing until asked to.
var features = map[featuregate.Feature]featuregate.FeatureSpec{
	SecondaryNetwork: {Default: false, PreRelease: featuregate.Alpha},
	AntreaIPAM:       {Default: false, PreRelease: featuregate.Alpha},
	// Off by default: changing a running Pod's interfaces is beyond the contract, so it is asked for.
	SecondaryNetworkHotplug: {Default: false, PreRelease: featuregate.Alpha},
	// On by default (hence beta: an alpha gate on by default would be switched off by
	// AllAlpha: false): it changes where holders are recorded, not what a Pod gets, and
	// status.ipAddresses entries of the previous scheme are honoured. Kept so that an operator can
	// go back to one entry per allocation.
	IPPoolBlocks: {Default: true, PreRelease: featuregate.Beta},
}

// NewFeatureGates returns a gate set of its own (never a process-wide one, so that two loaded
// configurations and parallel tests cannot see each other's settings) with the given gates set.
// Unknown names are rejected, each named.
func NewFeatureGates(enabled map[string]bool) (featuregate.FeatureGate, error) {
	gates, errs := newFeatureGates(enabled, field.NewPath("featureGates"))
	if len(errs) > 0 {
		return nil, errs.ToAggregate()
	}
	return gates, nil
}

func newFeatureGates(enabled map[string]bool, path *field.Path) (featuregate.FeatureGate, field.ErrorList) {
	gates := featuregate.NewFeatureGate()
	if err := gates.Add(features); err != nil {
		// Only a programming error (a malformed spec in `features`) gets here.
		return nil, field.ErrorList{field.InternalError(path, fmt.Errorf("register feature gates: %w", err))}
	}
	if errs := validateGateNames(gates, enabled, path); len(errs) > 0 {
		return nil, errs
	}
	// A zero logger: loading a configuration must not log; the caller logs what it decides.
	if err := gates.SetFromMapWithLogger(klog.Logger{}, enabled); err != nil {
		return nil, field.ErrorList{field.Invalid(path, enabled, err.Error())}
	}
	return gates, nil
}

// validateGateNames names every unknown gate; the library stops at the first one it meets, in
// random map order.
func validateGateNames(gates featuregate.MutableFeatureGate, enabled map[string]bool, path *field.Path) field.ErrorList {
	known := map[string]bool{}
	for name := range gates.GetAll() {
		known[string(name)] = true
	}
	var supported []string
	for name := range known {
		supported = append(supported, name)
	}
	slices.Sort(supported)
	var names []string
	for name := range enabled {
		names = append(names, name)
	}
	slices.Sort(names)
	var errs field.ErrorList
	for _, name := range names {
		if !known[name] {
			errs = append(errs, field.NotSupported(path.Key(name), name, supported))
		}
	}
	return errs
}

// GateDisabledError is the error a component returns for a request that needs a gate that is off.
func GateDisabledError(gate featuregate.Feature, file string) error {
	return fmt.Errorf("feature gate %s is disabled: set featureGates.%s: true in %s", gate, gate, file)
}
