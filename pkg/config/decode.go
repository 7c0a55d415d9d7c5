package config

import (
	"fmt"

	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"github.com/podvlan/podvlan/internal/strictjson"
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
	r, err := strictjson.Decode(jsonData, out, nil)
	if err != nil {
		return fmt.Errorf("not valid YAML: %w", err)
	}
	if r.RootKind != "" {
		return fmt.Errorf("the document must be a mapping of settings (key: value lines), not %s", kindNames[r.RootKind])
	}
	// YAMLToJSONStrict has refused duplicate keys already.
	var errs field.ErrorList
	for _, u := range r.Unknown {
		detail := u.Detail()
		if hint, ok := hints[u.Path.String()]; ok {
			detail = "unknown field; " + hint
		}
		errs = append(errs, field.Forbidden(u.Path, detail))
	}
	if r.WrongType != nil {
		errs = append(errs, r.WrongType)
	}
	return errs.ToAggregate()
}

// kindNames names the JSON kinds of a document in YAML terms.
var kindNames = map[string]string{"array": "a list", "string": "a string", "bool": "a boolean", "number": "a number"}
