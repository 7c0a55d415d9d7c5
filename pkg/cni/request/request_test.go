package request

import (
	"testing"
)

func TestParseMAC(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "locally administered unicast", in: "02:00:00:00:00:01", want: "02:00:00:00:00:01"},
		{name: "globally unique unicast", in: "00:1b:21:3c:4d:5e", want: "00:1b:21:3c:4d:5e"},
		{name: "upper case and dashes", in: "0A-1B-2C-3D-4E-5F", want: "0a:1b:2c:3d:4e:5f"},
		{name: "dotted form", in: "0a1b.2c3d.4e5f", want: "0a:1b:2c:3d:4e:5f"},
		{name: "not a MAC", in: "hello", wantErr: "not a MAC address (write six hex bytes, e.g. 02:00:00:00:00:01)"},
		{name: "five bytes", in: "02:00:00:00:01", wantErr: "not a MAC address (write six hex bytes, e.g. 02:00:00:00:00:01)"},
		{name: "EUI-64", in: "02:00:00:00:00:00:00:01", wantErr: "must be a 6-byte Ethernet MAC address, not 8 bytes"},
		{name: "multicast", in: "01:00:5e:00:00:01", wantErr: "is a multicast address (the lowest bit of the first byte is set); an interface needs a unicast MAC"},
		{name: "broadcast", in: "ff:ff:ff:ff:ff:ff", wantErr: "is a multicast address (the lowest bit of the first byte is set); an interface needs a unicast MAC"},
		{name: "all zeros", in: "00:00:00:00:00:00", wantErr: "the all-zero MAC address cannot be assigned to an interface"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mac, err := ParseMAC(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseMAC(%q) = %v, %v, want error %q", tt.in, mac, err, tt.wantErr)
				}
				return
			}
			if err != nil || mac.String() != tt.want {
				t.Fatalf("ParseMAC(%q) = %v, %v, want %s", tt.in, mac, err, tt.want)
			}
		})
	}
}

func TestParseIP(t *testing.T) {
	tests := []struct {
		name       string
		in         string
		want       string
		wantPrefix bool
		wantErr    string
	}{
		{name: "IPv4 with prefix keeps host bits", in: "10.1.1.5/24", want: "10.1.1.5/24", wantPrefix: true},
		{name: "bare IPv4", in: "10.1.1.5", want: "10.1.1.5"},
		{name: "IPv6 with prefix", in: "2001:db8::5/64", want: "2001:db8::5/64", wantPrefix: true},
		{name: "bare IPv6", in: "2001:db8::5", want: "2001:db8::5"},
		{name: "garbage", in: "ten", wantErr: "not an IP address (e.g. 10.1.1.5, 10.1.1.5/24 or 2001:db8::5/64)"},
		{name: "prefix too long", in: "10.1.1.5/33", wantErr: "not an IP address with prefix length (e.g. 10.1.1.5/24 or 2001:db8::5/64)"},
		{name: "zone", in: "fe80::1%eth0", wantErr: "must not carry a zone (%eth0)"},
		{name: "IPv4-mapped", in: "::ffff:10.1.1.5", wantErr: "write IPv4 addresses in dotted form (10.1.1.5), not IPv4-mapped IPv6"},
		{name: "IPv4-mapped with prefix", in: "::ffff:10.1.1.5/120", wantErr: "write IPv4 addresses in dotted form (10.1.1.5), not IPv4-mapped IPv6"},
		{name: "unspecified", in: "0.0.0.0", wantErr: "the unspecified address 0.0.0.0 cannot be assigned"},
		{name: "multicast", in: "ff02::1/64", wantErr: "ff02::1 is a multicast address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip, err := ParseIP(tt.in)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("ParseIP(%q) = %v, %v, want error %q", tt.in, ip, err, tt.wantErr)
				}
				return
			}
			if err != nil || ip.String() != tt.want || ip.HasPrefix() != tt.wantPrefix {
				t.Fatalf("ParseIP(%q) = %v (prefix %v), %v, want %s (prefix %v)", tt.in, ip, ip.HasPrefix(), err, tt.want, tt.wantPrefix)
			}
		})
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in      string
		wantErr string
	}{
		{in: "10.0.0.1"},
		{in: "fd00::1"},
		{in: "10.0.0.1/24", wantErr: "not an IP address"},
		{in: "::", wantErr: "the unspecified address :: cannot be assigned"},
		{in: "224.0.0.1", wantErr: "224.0.0.1 is a multicast address"},
	}
	for _, tt := range tests {
		_, err := ParseAddr(tt.in)
		if (tt.wantErr == "" && err != nil) || (tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr)) {
			t.Errorf("ParseAddr(%q) error = %v, want %q", tt.in, err, tt.wantErr)
		}
	}
}
