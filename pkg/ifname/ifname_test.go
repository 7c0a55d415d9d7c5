package ifname

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		ifname  string
		wantErr string
	}{
		{name: "short name is valid", ifname: "eth1"},
		{name: "fifteen characters is valid", ifname: strings.Repeat("a", 15)},
		{name: "dots dashes and underscores are valid", ifname: "br-sec.100_x"},
		{name: "single character is valid", ifname: "a"},
		{name: "empty name is rejected", ifname: "", wantErr: "must not be empty"},
		{name: "sixteen characters is rejected", ifname: strings.Repeat("a", 16), wantErr: "must be at most 15 characters, not 16"},
		{name: "dot is rejected", ifname: ".", wantErr: `must not be "."`},
		{name: "dot dot is rejected", ifname: "..", wantErr: `must not be ".."`},
		{name: "slash is rejected", ifname: "eth/1", wantErr: `must not contain '/'`},
		{name: "colon is rejected", ifname: "eth0:1", wantErr: `must not contain ':'`},
		{name: "space is rejected", ifname: "eth 1", wantErr: "must not contain white space"},
		{name: "tab is rejected", ifname: "eth\t1", wantErr: "must not contain white space"},
		{name: "newline is rejected", ifname: "eth1\n", wantErr: "must not contain white space"},
		{name: "NUL byte is rejected", ifname: "eth\x001", wantErr: "must contain only printable ASCII characters, found byte 0x00"},
		{name: "non-ASCII is rejected", ifname: "ethé", wantErr: "must contain only printable ASCII characters, found byte 0xc3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.ifname)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want nil", tt.ifname, err)
				}
				if !IsValid(tt.ifname) {
					t.Fatalf("IsValid(%q) = false, want true", tt.ifname)
				}
				return
			}
			if err == nil || err.Error() != tt.wantErr {
				t.Fatalf("Validate(%q) = %v, want %q", tt.ifname, err, tt.wantErr)
			}
			if IsValid(tt.ifname) {
				t.Fatalf("IsValid(%q) = true, want false", tt.ifname)
			}
		})
	}
}
