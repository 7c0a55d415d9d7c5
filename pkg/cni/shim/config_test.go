package shim

import (
	"errors"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
)

func TestSocketPath(t *testing.T) {
	tests := []struct {
		name   string
		stdin  string
		env    string
		want   string
		wantEr uint
	}{
		{name: "the config's cniSocket wins", stdin: `{"cniSocket":"/run/node1/cni.sock"}`, env: "/run/env/cni.sock", want: "/run/node1/cni.sock"},
		{name: "the environment names the socket when the config does not", stdin: `{"cniVersion":"1.0.0"}`, env: "/run/env/cni.sock", want: "/run/env/cni.sock"},
		{name: "the default socket when neither names one", stdin: `{"cniVersion":"1.0.0"}`, want: DefaultSocketPath},
		{name: "a relative cniSocket is an invalid config", stdin: `{"cniSocket":"run/cni.sock"}`, wantEr: types.ErrInvalidNetworkConfig},
		{name: "a cniSocket that is not a string is an invalid config", stdin: `{"cniSocket":7}`, wantEr: types.ErrInvalidNetworkConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conf, err := parseConfig([]byte(tt.stdin))
			if tt.wantEr != 0 {
				var cniErr *types.Error
				if !errors.As(err, &cniErr) || cniErr.Code != tt.wantEr {
					t.Fatalf("parseConfig(%s) error = %v, want CNI error code %d", tt.stdin, err, tt.wantEr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseConfig(%s): %v", tt.stdin, err)
			}
			getenv := func(key string) string {
				if key == SocketEnv {
					return tt.env
				}
				return ""
			}
			if got := socketPath(conf, getenv); got != tt.want {
				t.Errorf("socketPath = %q, want %q", got, tt.want)
			}
		})
	}
}
