package shim

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The shim encodes the two messages of the CNI protocol (pkg/cni/cnipb/cni.proto) itself, with
// the few lines of the protobuf wire format they need, and speaks the HTTP/2 of one unary gRPC
// call itself (agentcall.go, h2.go), instead of linking grpc-go, the protobuf runtime or net/http:
// those made the binary 15.5 MB instead of 5 MB and added about 1.5 ms (a 60% longer exec, package
// initialisation and page faults) to every CNI call of every Pod, including the Pods that ask for
// no secondary network and whose ADD the shim answers alone. The tests check the encoding against
// the generated code both ways, and every call against the agent's real gRPC server.

// agentRequest is cnipb.CniCmdRequest.
type agentRequest struct {
	Command       string // 1
	ContainerID   string // 2
	Netns         string // 3
	IfName        string // 4
	Args          string // 5
	Path          string // 6
	CNIVersion    string // 7
	NetworkConfig []byte // 8
}

// agentResponse is cnipb.CniCmdResponse.
type agentResponse struct {
	Result []byte      // 1
	Error  *agentError // 2
}

// agentError is cnipb.CniError.
type agentError struct {
	Code    uint32 // 1
	Msg     string // 2
	Details string // 3
}

const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

// marshal encodes the request as proto3 does: fields in order, empty ones left out.
func (r *agentRequest) marshal() []byte {
	var b []byte
	for i, s := range []string{r.Command, r.ContainerID, r.Netns, r.IfName, r.Args, r.Path, r.CNIVersion} {
		b = appendBytesField(b, i+1, []byte(s))
	}
	return appendBytesField(b, 8, r.NetworkConfig)
}

func appendBytesField(b []byte, field int, v []byte) []byte {
	if len(v) == 0 {
		return b
	}
	b = binary.AppendUvarint(b, uint64(field)<<3|wireBytes)
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// unmarshalResponse decodes a CniCmdResponse, skipping fields it does not know.
func unmarshalResponse(b []byte) (*agentResponse, error) {
	resp := &agentResponse{}
	err := eachField(b, func(field int, wire int, v []byte, n uint64) error {
		switch {
		case field == 1 && wire == wireBytes:
			resp.Result = append([]byte(nil), v...)
		case field == 2 && wire == wireBytes:
			e, err := unmarshalError(v)
			if err != nil {
				return fmt.Errorf("error: %w", err)
			}
			resp.Error = e
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode the agent's answer: %w", err)
	}
	return resp, nil
}

func unmarshalError(b []byte) (*agentError, error) {
	e := &agentError{}
	err := eachField(b, func(field int, wire int, v []byte, n uint64) error {
		switch {
		case field == 1 && wire == wireVarint:
			e.Code = uint32(n)
		case field == 2 && wire == wireBytes:
			e.Msg = string(v)
		case field == 3 && wire == wireBytes:
			e.Details = string(v)
		}
		return nil
	})
	return e, err
}

var errTruncated = errors.New("truncated protobuf message")

// eachField calls f for every field of a message: its number, wire type, and its bytes
// (length-delimited) or value (varint and fixed).
func eachField(b []byte, f func(field, wire int, v []byte, n uint64) error) error {
	for len(b) > 0 {
		key, k := binary.Uvarint(b)
		if k <= 0 {
			return errTruncated
		}
		b = b[k:]
		field, wire := int(key>>3), int(key&7)
		if field == 0 {
			return errors.New("protobuf field number 0")
		}
		var v []byte
		var n uint64
		switch wire {
		case wireVarint:
			var k int
			if n, k = binary.Uvarint(b); k <= 0 {
				return errTruncated
			}
			b = b[k:]
		case wireFixed64:
			if len(b) < 8 {
				return errTruncated
			}
			n, b = binary.LittleEndian.Uint64(b), b[8:]
		case wireFixed32:
			if len(b) < 4 {
				return errTruncated
			}
			n, b = uint64(binary.LittleEndian.Uint32(b)), b[4:]
		case wireBytes:
			l, k := binary.Uvarint(b)
			if k <= 0 || uint64(len(b)-k) < l {
				return errTruncated
			}
			v, b = b[k:k+int(l)], b[k+int(l):]
		default:
			return fmt.Errorf("unsupported protobuf wire type %d", wire)
		}
		if err := f(field, wire, v, n); err != nil {
			return err
		}
	}
	return nil
}
