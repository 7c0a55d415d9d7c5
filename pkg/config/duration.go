package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// duration reads a Go duration string ("90s", "2m", "1h30m") and says so when it gets anything
// else; a bare number is refused because its unit would be a guess.
type duration struct {
	time.Duration
}

// UnmarshalJSON implements json.Unmarshaler.
func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf(`must be a duration such as "90s" or "2m"`)
	}
	parsed, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf(`must be a duration such as "90s" or "2m"`)
	}
	d.Duration = parsed
	return nil
}
