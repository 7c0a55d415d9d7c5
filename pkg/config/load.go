package config

import (
	"fmt"
	"os"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// LoadAgent decodes, defaults and validates antrea-agent.conf.
func LoadAgent(data []byte) (*Agent, error) {
	a := &Agent{}
	if err := decodeStrict(data, a, agentMisplaced); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", AgentFileName, err)
	}
	a.setDefaults()
	if errs := a.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid %s: %w", AgentFileName, errs.ToAggregate())
	}
	gates, errs := newFeatureGates(a.FeatureGates, field.NewPath("featureGates"))
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid %s: %w", AgentFileName, errs.ToAggregate())
	}
	a.Gates = gates
	return a, nil
}

// LoadAgentFile reads and loads antrea-agent.conf from path.
func LoadAgentFile(path string) (*Agent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent configuration: %w", err)
	}
	a, err := LoadAgent(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return a, nil
}

// LoadController decodes, defaults and validates antrea-controller.conf.
func LoadController(data []byte) (*Controller, error) {
	f := &controllerFile{}
	if err := decodeStrict(data, f, controllerMisplaced); err != nil {
		return nil, fmt.Errorf("invalid %s: %w", ControllerFileName, err)
	}
	if errs := f.IPPoolGC.validate(field.NewPath("ipPoolGC")); len(errs) > 0 {
		return nil, fmt.Errorf("invalid %s: %w", ControllerFileName, errs.ToAggregate())
	}
	c := f.withDefaults()
	if errs := c.Validate(); len(errs) > 0 {
		return nil, fmt.Errorf("invalid %s: %w", ControllerFileName, errs.ToAggregate())
	}
	gates, errs := newFeatureGates(c.FeatureGates, field.NewPath("featureGates"))
	if len(errs) > 0 {
		return nil, fmt.Errorf("invalid %s: %w", ControllerFileName, errs.ToAggregate())
	}
	c.Gates = gates
	return c, nil
}

// LoadControllerFile reads and loads antrea-controller.conf from path.
func LoadControllerFile(path string) (*Controller, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read controller configuration: %w", err)
	}
	c, err := LoadController(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

func (a *Agent) setDefaults() {
	if a.OVSDatapathType == "" {
		a.OVSDatapathType = DatapathSystem
	}
	if a.OVSRunDir == "" {
		a.OVSRunDir = DefaultOVSRunDir
	}
	if a.CNISocket == "" {
		a.CNISocket = DefaultCNISocket
	}
}

func (f *controllerFile) withDefaults() *Controller {
	c := &Controller{
		FeatureGates:     f.FeatureGates,
		ClientConnection: f.ClientConnection,
		APIPort:          DefaultAPIPort,
		SelfSignedCert:   true,
		IPPoolGC: IPPoolGC{
			Interval:    DefaultIPPoolGCInterval,
			GracePeriod: DefaultIPPoolGracePeriod,
		},
	}
	if f.APIPort != nil {
		c.APIPort = *f.APIPort
	}
	if f.SelfSignedCert != nil {
		c.SelfSignedCert = *f.SelfSignedCert
	}
	if f.IPPoolGC.Interval != nil {
		c.IPPoolGC.Interval = f.IPPoolGC.Interval.Duration
	}
	if f.IPPoolGC.GracePeriod != nil {
		c.IPPoolGC.GracePeriod = f.IPPoolGC.GracePeriod.Duration
	}
	return c
}
