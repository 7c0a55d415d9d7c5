package config

import (
	"encoding/json"
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/podvlan/podvlan/internal/jsonshape"
)

// misplaced maps a key that is valid somewhere else (by its path where it was found) to where it
// belongs. The top-level ovsBridges is the mistake users make most often.
type misplaced map[string]string

var agentMisplaced = misplaced{
	"ovsBridges":                          "it belongs under secondaryNetwork: write secondaryNetwork.ovsBridges",
	"bridgeName":                          "it belongs to a bridge: write secondaryNetwork.ovsBridges[0].bridgeName",
	"physicalInterfaces":                  "it belongs to a bridge: write secondaryNetwork.ovsBridges[0].physicalInterfaces",
	"secondaryNetwork.bridgeName":         "it belongs to a bridge: write secondaryNetwork.ovsBridges[0].bridgeName",
	"secondaryNetwork.physicalInterfaces": "it belongs to a bridge: write secondaryNetwork.ovsBridges[0].physicalInterfaces",
	"kubeconfig":                          "it belongs under clientConnection: write clientConnection.kubeconfig",
	"SecondaryNetwork":                    "it is a feature gate: write featureGates.SecondaryNetwork",
	"AntreaIPAM":                          "it is a feature gate: write featureGates.AntreaIPAM",
	"apiPort":                             "it is a setting of " + ControllerFileName,
	"selfSignedCert":                      "it is a setting of " + ControllerFileName,
	"ipPoolGC":                            "it is a setting of " + ControllerFileName,
}

var controllerMisplaced = misplaced{
	"secondaryNetwork": "it is a setting of " + AgentFileName,
	"ovsBridges":       "it is a setting of " + AgentFileName + " (under secondaryNetwork)",
	"ovsDatapathType":  "it is a setting of " + AgentFileName,
	"ovsRunDir":        "it is a setting of " + AgentFileName,
	"cniSocket":        "it is a setting of " + AgentFileName,
	"kubeconfig":       "it belongs under clientConnection: write clientConnection.kubeconfig",
	"SecondaryNetwork": "it is a feature gate: write featureGates.SecondaryNetwork",
	"AntreaIPAM":       "it is a feature gate: write featureGates.AntreaIPAM",
	"interval":         "it belongs under ipPoolGC: write ipPoolGC.interval",
	"gracePeriod":      "it belongs under ipPoolGC: write ipPoolGC.gracePeriod",
}

// decodeStrict reads a YAML document into out (a pointer to a struct). It refuses duplicate
// keys, unknown keys and values of the wrong type, naming each with its path. An empty document
// leaves out untouched, so that defaults apply.
func decodeStrict(data []byte, out any, hints misplaced) error {
	jsonData, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	value, err := jsonshape.Decode(jsonData)
	if err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	switch value.(type) {
	case nil:
		return nil
	case map[string]any:
	default:
		return fmt.Errorf("the document must be a mapping of settings (key: value lines), not %s", kindOf(value))
	}
	report := jsonshape.Check(value, reflect.TypeOf(out).Elem(), nil)
	var errs field.ErrorList
	for _, u := range report.Unknown {
		errs = append(errs, field.Forbidden(u.Path, unknownKeyDetail(u, hints)))
	}
	errs = append(errs, report.Invalid...)
	if len(errs) > 0 {
		return errs.ToAggregate()
	}
	if err := json.Unmarshal(jsonData, out); err != nil {
		// Check accepts only what decodes; reaching this is a bug in Check, still reported.
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

func unknownKeyDetail(u jsonshape.UnknownKey, hints misplaced) string {
	if hint, ok := hints[u.Path.String()]; ok {
		return "unknown field; " + hint
	}
	if s := u.Suggest(); s != "" {
		return fmt.Sprintf("unknown field; did you mean %q?", s)
	}
	return "unknown field"
}

func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		return "a number"
	default:
		return fmt.Sprintf("%T", v)
	}
}
