package config

import (
	"fmt"
	"path/filepath"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podvlan/podvlan/pkg/ifname"
)

// reservedBridgeNames are the datapath devices Open vSwitch creates itself; a bridge of that
// name would collide with them.
var reservedBridgeNames = map[string]bool{"ovs-system": true, "ovs-netdev": true}

// Validate checks a defaulted Agent and returns every problem with its field path.
func (a *Agent) Validate() field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateFeatureGates(a.FeatureGates, field.NewPath("featureGates"))...)
	switch a.OVSDatapathType {
	case DatapathSystem, DatapathNetdev:
	default:
		errs = append(errs, field.NotSupported(field.NewPath("ovsDatapathType"), a.OVSDatapathType,
			[]DatapathType{DatapathSystem, DatapathNetdev}))
	}
	errs = append(errs, validateAbsolutePath(a.OVSRunDir, field.NewPath("ovsRunDir"))...)
	socketPath := field.NewPath("cniSocket")
	errs = append(errs, validateAbsolutePath(a.CNISocket, socketPath)...)
	if len(a.CNISocket) > maxUnixSocketPath {
		errs = append(errs, field.Invalid(socketPath, a.CNISocket,
			fmt.Sprintf("a unix socket path must be at most %d bytes, this one is %d", maxUnixSocketPath, len(a.CNISocket))))
	}
	errs = append(errs, validateSecondaryNetwork(&a.SecondaryNetwork, field.NewPath("secondaryNetwork"))...)
	return errs
}

func validateSecondaryNetwork(sn *SecondaryNetworkConfig, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	bridgesPath := path.Child("ovsBridges")
	for i, bridge := range sn.OVSBridges {
		bridgePath := bridgesPath.Index(i)
		if i >= MaxOVSBridges {
			errs = append(errs, field.Invalid(bridgePath, bridge.BridgeName,
				fmt.Sprintf("at most %d OVS bridge is supported", MaxOVSBridges)))
			continue
		}
		errs = append(errs, validateBridge(&bridge, bridgePath)...)
	}
	return errs
}

func validateBridge(bridge *OVSBridge, path *field.Path) field.ErrorList {
	var errs field.ErrorList
	namePath := path.Child("bridgeName")
	switch {
	case bridge.BridgeName == "":
		errs = append(errs, field.Required(namePath, "the secondary bridge needs a name, e.g. br-secondary"))
	case reservedBridgeNames[bridge.BridgeName]:
		errs = append(errs, field.Invalid(namePath, bridge.BridgeName, "is reserved by Open vSwitch"))
	default:
		if err := ifname.Validate(bridge.BridgeName); err != nil {
			errs = append(errs, field.Invalid(namePath, bridge.BridgeName, "not a valid interface name: "+err.Error()))
		}
	}
	nicsPath := path.Child("physicalInterfaces")
	seen := map[string]bool{}
	for j, nic := range bridge.PhysicalInterfaces {
		nicPath := nicsPath.Index(j)
		if j >= MaxPhysicalInterfaces {
			errs = append(errs, field.Invalid(nicPath, nic,
				fmt.Sprintf("at most %d physical interfaces", MaxPhysicalInterfaces)))
			break
		}
		if err := ifname.Validate(nic); err != nil {
			errs = append(errs, field.Invalid(nicPath, nic, "not a valid interface name: "+err.Error()))
			continue
		}
		if seen[nic] {
			errs = append(errs, field.Duplicate(nicPath, nic))
			continue
		}
		seen[nic] = true
		if nic == bridge.BridgeName {
			errs = append(errs, field.Invalid(nicPath, nic, "is the bridge itself, not an uplink"))
		}
	}
	return errs
}

func validateAbsolutePath(p string, path *field.Path) field.ErrorList {
	if !filepath.IsAbs(p) {
		return field.ErrorList{field.Invalid(path, p, "must be an absolute path")}
	}
	return nil
}

// Validate checks a defaulted Controller and returns every problem with its field path.
func (c *Controller) Validate() field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, validateFeatureGates(c.FeatureGates, field.NewPath("featureGates"))...)
	if c.APIPort < 1 || c.APIPort > 65535 {
		errs = append(errs, field.Invalid(field.NewPath("apiPort"), c.APIPort, "must be a port number between 1 and 65535"))
	}
	gcPath := field.NewPath("ipPoolGC")
	if c.IPPoolGC.Interval < minGCInterval {
		errs = append(errs, field.Invalid(gcPath.Child("interval"), c.IPPoolGC.Interval.String(),
			fmt.Sprintf("must be at least %s", minGCInterval)))
	}
	if c.IPPoolGC.GracePeriod < 0 {
		errs = append(errs, field.Invalid(gcPath.Child("gracePeriod"), c.IPPoolGC.GracePeriod.String(),
			"must not be negative"))
	}
	return errs
}

// validateFeatureGates names every gate that is not known.
func validateFeatureGates(enabled map[string]bool, path *field.Path) field.ErrorList {
	_, errs := newFeatureGates(enabled, path)
	return errs
}
