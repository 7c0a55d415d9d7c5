// Package ifname holds the rule for Linux network interface names, shared by the agent
// configuration (bridges, uplinks) and the Pod annotation (container interfaces).
package ifname

import "fmt"

// MaxLen is the longest name the kernel accepts: IFNAMSIZ (16) minus the terminating NUL.
const MaxLen = 15

// Validate returns nil when name is a usable Linux interface name, or an error saying why not.
//
// The kernel (dev_valid_name) refuses empty names, names of 16 bytes or more, "." and "..",
// and names containing '/', ':' or white space. We also refuse bytes outside printable ASCII:
// the kernel's isspace() treats some high bytes as white space, which would make a UTF-8 name
// fail half-way through an attach, and no one names interfaces that way on purpose.
func Validate(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("must not be empty")
	case len(name) > MaxLen:
		return fmt.Errorf("must be at most %d characters, not %d", MaxLen, len(name))
	case name == "." || name == "..":
		return fmt.Errorf("must not be %q", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '/' || c == ':':
			return fmt.Errorf("must not contain %q", c)
		case c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r':
			return fmt.Errorf("must not contain white space")
		case c < 0x21 || c > 0x7e:
			return fmt.Errorf("must contain only printable ASCII characters, found byte 0x%02x", c)
		}
	}
	return nil
}

// IsValid reports whether Validate accepts name.
func IsValid(name string) bool {
	return Validate(name) == nil
}

// Describe is the rule in words, for error messages that list what is allowed.
func Describe() string {
	return fmt.Sprintf("1-%d printable ASCII characters, no '/', ':' or white space, not '.' or '..'",
		MaxLen)
}
