package config

import (
	"encoding/json"
	"time"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// durationProblem is what a duration setting must look like.
const durationProblem = `must be a duration such as "90s" or "2m"`

// duration reads a Go duration string ("90s", "2m", "1h30m"). Anything else (a bare number,
// whose unit would be a guess, or text that does not parse) is kept as written for validate to
// name with its path: a type's own JSON decoder is not told where its value is.
type duration struct {
	time.Duration
	invalid any
}

// UnmarshalJSON implements json.Unmarshaler; it never fails, see validate.
func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		parsed, err := time.ParseDuration(s)
		d.Duration, d.invalid = parsed, nil
		if err != nil {
			d.invalid = s
		}
		return nil
	}
	switch b[0] {
	case '{':
		d.invalid = "{...}"
	case '[':
		d.invalid = "[...]"
	case 't', 'f':
		d.invalid = b[0] == 't'
	default:
		d.invalid = json.Number(b)
	}
	return nil
}

// validate reports a value that was not a duration string.
func (d *duration) validate(path *field.Path) field.ErrorList {
	if d == nil || d.invalid == nil {
		return nil
	}
	return field.ErrorList{field.Invalid(path, d.invalid, durationProblem)}
}

// validate reports the durations that were not duration strings.
func (g *ipPoolGCFile) validate(path *field.Path) field.ErrorList {
	return append(g.Interval.validate(path.Child("interval")), g.GracePeriod.validate(path.Child("gracePeriod"))...)
}
