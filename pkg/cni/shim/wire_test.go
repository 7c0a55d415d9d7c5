package shim

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/podvlan/podvlan/pkg/cni/cnipb"
)

func TestRequestEncodingMatchesTheGeneratedCode(t *testing.T) {
	for _, req := range []*agentRequest{
		{Command: "ADD", ContainerID: "4f1a", Netns: "/var/run/netns/cni-1", IfName: "eth0", Args: "K8S_POD_NAME=a",
			Path: "/opt/cni/bin", CNIVersion: "1.0.0", NetworkConfig: bytes.Repeat([]byte("x"), 300)},
		{Command: "STATUS"},
		{},
	} {
		var got cnipb.CniCmdRequest
		if err := proto.Unmarshal(req.marshal(), &got); err != nil {
			t.Fatalf("the generated code cannot decode %+v: %v", req, err)
		}
		want := &cnipb.CniCmdRequest{Command: req.Command, ContainerId: req.ContainerID, Netns: req.Netns, Ifname: req.IfName,
			Args: req.Args, Path: req.Path, CniVersion: req.CNIVersion, NetworkConfig: req.NetworkConfig}
		if !proto.Equal(&got, want) {
			t.Errorf("decoded %v, want %v", &got, want)
		}
	}
}

func TestResponseDecodingMatchesTheGeneratedCode(t *testing.T) {
	for _, resp := range []*cnipb.CniCmdResponse{
		{Result: []byte(`{"cniVersion":"1.0.0"}`)},
		{Error: &cnipb.CniError{Code: 7, Msg: "unknown network ns1/vlan300", Details: "NetworkAttachmentDefinition not found"}},
		{Error: &cnipb.CniError{Code: 999}},
		{},
	} {
		data, err := proto.Marshal(resp)
		if err != nil {
			t.Fatal(err)
		}
		got, err := unmarshalResponse(data)
		if err != nil {
			t.Fatalf("decode %v: %v", resp, err)
		}
		if !bytes.Equal(got.Result, resp.Result) || (got.Error == nil) != (resp.Error == nil) {
			t.Fatalf("decoded %+v, want %v", got, resp)
		}
		if e := resp.Error; e != nil && (got.Error.Code != e.Code || got.Error.Msg != e.Msg || got.Error.Details != e.Details) {
			t.Errorf("decoded error %+v, want %v", got.Error, e)
		}
	}
}

func TestResponseDecodingSkipsUnknownFieldsAndRefusesTruncation(t *testing.T) {
	data, _ := proto.Marshal(&cnipb.CniCmdResponse{Result: []byte("r")})
	// Fields a newer agent might add: a varint, a fixed64, a fixed32 and a string.
	extra := []byte{0x18, 0x96, 0x01, 0x21, 1, 2, 3, 4, 5, 6, 7, 8, 0x2d, 1, 2, 3, 4, 0x32, 0x01, 'z'}
	got, err := unmarshalResponse(append(extra, data...))
	if err != nil || string(got.Result) != "r" {
		t.Errorf("with unknown fields: %+v, %v; want the result", got, err)
	}
	for _, bad := range [][]byte{{0x0a, 0x05, 'a'}, {0x0a}, {0x08}, {0x00, 0x00}, {0x0b}} {
		if _, err := unmarshalResponse(bad); err == nil {
			t.Errorf("decoding %x succeeded, want an error", bad)
		}
	}
}

func FuzzUnmarshalResponse(f *testing.F) {
	data, _ := proto.Marshal(&cnipb.CniCmdResponse{Result: []byte("r"), Error: &cnipb.CniError{Code: 7, Msg: "m"}})
	f.Add(data)
	f.Add([]byte{0x12, 0x02, 0x08, 0x07})
	f.Fuzz(func(t *testing.T, b []byte) {
		resp, err := unmarshalResponse(b)
		if err != nil {
			return
		}
		// Whatever decodes must also decode with the generated code to the same fields.
		var want cnipb.CniCmdResponse
		if proto.Unmarshal(b, &want) == nil && !bytes.Equal(resp.Result, want.Result) {
			t.Errorf("result %q, generated code says %q", resp.Result, want.Result)
		}
	})
}
