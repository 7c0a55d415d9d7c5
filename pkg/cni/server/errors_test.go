package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

func TestCNIErrorFor(t *testing.T) {
	invalidConfig := types.NewError(types.ErrInvalidNetworkConfig, "vlan 5000 is out of range", "vlan must be 0..4094")
	tests := []struct {
		name        string
		command     string
		err         error
		wantCode    uint32
		wantMsg     string
		wantDetails string
	}{
		{
			name:        "a CNI error keeps its code, message and details",
			command:     CommandAdd,
			err:         invalidConfig,
			wantCode:    7,
			wantMsg:     "vlan 5000 is out of range",
			wantDetails: "vlan must be 0..4094",
		},
		{
			name:        "a wrapped CNI error keeps its code and the wrapping context, details once",
			command:     CommandAdd,
			err:         fmt.Errorf("attach network default/vlan100 as net1: %w", invalidConfig),
			wantCode:    7,
			wantMsg:     "attach network default/vlan100 as net1: vlan 5000 is out of range",
			wantDetails: "vlan must be 0..4094",
		},
		{
			name:     "a CNI try-again error stays try-again",
			command:  CommandDel,
			err:      types.NewError(types.ErrTryAgainLater, "IPPool cache not synced", ""),
			wantCode: 11,
			wantMsg:  "IPPool cache not synced",
		},
		{
			name:     "a plain error becomes an internal error",
			command:  CommandAdd,
			err:      errors.New("create veth: file exists"),
			wantCode: 999,
			wantMsg:  "create veth: file exists",
		},
		{
			name:     "a deadline becomes try again later",
			command:  CommandAdd,
			err:      fmt.Errorf("update IPPool status: %w", context.DeadlineExceeded),
			wantCode: 11,
			wantMsg:  "update IPPool status: context deadline exceeded",
		},
		{
			name:     "a cancellation becomes try again later",
			command:  CommandCheck,
			err:      context.Canceled,
			wantCode: 11,
			wantMsg:  "context canceled",
		},
		{
			name:     "a plain error from STATUS means the plugin is not available",
			command:  CommandStatus,
			err:      errors.New("OVSDB not connected"),
			wantCode: 50,
			wantMsg:  "OVSDB not connected",
		},
		{
			name:     "a CNI error from STATUS keeps its code",
			command:  CommandStatus,
			err:      types.NewError(types.ErrLimitedConnectivity, "uplink eth1 is down", ""),
			wantCode: 51,
			wantMsg:  "uplink eth1 is down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := cniErrorFor(tt.command, tt.err)
			if got.GetCode() != tt.wantCode || got.GetMsg() != tt.wantMsg || got.GetDetails() != tt.wantDetails {
				t.Errorf("cniErrorFor(%s, %q) = {%d %q %q}, want {%d %q %q}", tt.command, tt.err,
					got.GetCode(), got.GetMsg(), got.GetDetails(), tt.wantCode, tt.wantMsg, tt.wantDetails)
			}
		})
	}
}

func TestEncodeResult(t *testing.T) {
	result := &types100.Result{
		CNIVersion: "1.1.0",
		Interfaces: []*types100.Interface{{Name: "net1", Mac: "0a:58:0a:0a:01:02", Sandbox: "/var/run/netns/p"}},
		IPs: []*types100.IPConfig{{
			Interface: types100.Int(0),
			Address:   net.IPNet{IP: net.ParseIP("10.10.1.2").To4(), Mask: net.CIDRMask(24, 32)},
			Gateway:   net.ParseIP("10.10.1.1"),
		}},
	}
	tests := []struct {
		name        string
		result      types.Result
		cniVersion  string
		wantVersion string
		wantCode    uint32
	}{
		{name: "a 1.1.0 result for a 0.3.0 config is encoded as 0.3.0", result: result, cniVersion: "0.3.0", wantVersion: "0.3.0"},
		{name: "a 1.1.0 result for a 0.4.0 config is encoded as 0.4.0", result: result, cniVersion: "0.4.0", wantVersion: "0.4.0"},
		{name: "a 1.1.0 result for a 1.0.0 config is encoded as 1.0.0", result: result, cniVersion: "1.0.0", wantVersion: "1.0.0"},
		{name: "an unknown version is an incompatible-version error", result: result, cniVersion: "9.9.9", wantCode: 1},
		{name: "no result is an internal error", result: nil, cniVersion: "1.0.0", wantCode: 999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encoded, cniErr := encodeResult(tt.result, tt.cniVersion)
			if tt.wantCode != 0 {
				if cniErr.GetCode() != tt.wantCode {
					t.Fatalf("encodeResult error code = %d (%v), want %d", cniErr.GetCode(), cniErr, tt.wantCode)
				}
				return
			}
			if cniErr != nil {
				t.Fatalf("encodeResult: %v", cniErr)
			}
			var decoded struct {
				CNIVersion string `json:"cniVersion"`
				IPs        []struct {
					Address string `json:"address"`
				} `json:"ips"`
			}
			if err := json.Unmarshal(encoded, &decoded); err != nil {
				t.Fatalf("decode %s: %v", encoded, err)
			}
			if decoded.CNIVersion != tt.wantVersion || len(decoded.IPs) != 1 || decoded.IPs[0].Address != "10.10.1.2/24" {
				t.Errorf("encoded result = %s, want version %s with address 10.10.1.2/24", encoded, tt.wantVersion)
			}
		})
	}
}

func TestPodFromArgs(t *testing.T) {
	tests := []struct {
		name          string
		args          string
		wantNamespace string
		wantName      string
	}{
		{name: "kubelet args name the pod", args: "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=abc", wantNamespace: "ns1", wantName: "web-0"},
		{name: "no args name no pod", args: ""},
		{name: "a pair without a value is ignored", args: "K8S_POD_NAME;K8S_POD_NAMESPACE=ns1", wantNamespace: "ns1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			namespace, name := podFromArgs(tt.args)
			if namespace != tt.wantNamespace || name != tt.wantName {
				t.Errorf("podFromArgs(%q) = %q, %q; want %q, %q", tt.args, namespace, name, tt.wantNamespace, tt.wantName)
			}
		})
	}
}
