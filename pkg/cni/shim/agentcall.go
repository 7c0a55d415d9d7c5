package shim

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"time"
)

// The agent serves gRPC (pkg/cni/server). A unary gRPC call is one HTTP/2 POST: the message in a
// five-byte frame (compression flag, length) as the body, the answer framed the same way, and the
// call's status in the grpc-status and grpc-message trailers (or headers, when there is no
// answer). The shim makes that call over the unix socket with its own minimal HTTP/2 client
// (h2.go), which costs far less at start-up than grpc-go or net/http (see wire.go).

// grpcService is the full name of the service in pkg/cni/cnipb/cni.proto.
const grpcService = "podvlan.cni.v1.Cni"

// gRPC status codes the shim tells apart (google.golang.org/grpc/codes).
const (
	grpcOK               = 0
	grpcDeadlineExceeded = 4
	grpcUnavailable      = 14
)

// maxAnswer bounds the agent's answer, as grpc-go's default receive limit does.
const maxAnswer = 4 << 20

// methods maps the CNI commands to the service's methods.
var methods = map[string]string{
	commandAdd: "CmdAdd", commandCheck: "CmdCheck", commandDel: "CmdDel", commandGC: "CmdGC", commandStatus: "CmdStatus",
}

// call connects to the agent and makes one call, within timeout overall.
func call(command, socket string, timeout time.Duration, req *agentRequest) (*agentResponse, *callFailure) {
	method, ok := methods[command]
	if !ok {
		return nil, &callFailure{kind: callFailed, cause: fmt.Errorf("unknown CNI command %q", command)}
	}
	deadline := time.Now().Add(timeout)

	// Connecting first, by hand, tells "no agent" (nothing listens on the socket) apart from
	// failures of an agent that is there.
	dialer := &net.Dialer{Timeout: ConnectTimeout, Deadline: deadline}
	conn, err := dialer.Dial("unix", socket)
	if err != nil {
		return nil, &callFailure{kind: agentUnreachable, cause: err}
	}
	defer conn.Close()
	if err := conn.SetDeadline(deadline); err != nil {
		return nil, &callFailure{kind: callFailed, cause: err}
	}

	msg := req.marshal()
	body := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)
	headers := [][2]string{{"content-type", "application/grpc"}, {"te", "trailers"},
		{"grpc-timeout", strconv.FormatInt(max(time.Until(deadline).Milliseconds(), 1), 10) + "m"}}
	resp, err := roundTrip(conn, "/"+grpcService+"/"+method, headers, body)
	if err != nil {
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return nil, &callFailure{kind: agentTimedOut, cause: err}
		}
		return nil, &callFailure{kind: agentUnreachable, cause: fmt.Errorf("lost the connection to antrea-agent: %w", err)}
	}
	if resp.status() != 200 {
		return nil, &callFailure{kind: callFailed, cause: fmt.Errorf("antrea-agent answered HTTP status %q", resp.header[":status"])}
	}
	if failure := grpcStatus(resp); failure != nil {
		return nil, failure
	}
	answer, err := unframe(resp.body)
	if err != nil {
		return nil, &callFailure{kind: callFailed, cause: err}
	}
	return answer, nil
}

// grpcStatus reads the call's status from the trailers (or the headers of an answer without a
// message); nil when it is OK.
func grpcStatus(resp *h2Response) *callFailure {
	value, message := resp.trailer["grpc-status"], resp.trailer["grpc-message"]
	if value == "" {
		value, message = resp.header["grpc-status"], resp.header["grpc-message"]
	}
	if value == "" {
		return &callFailure{kind: callFailed, cause: errors.New("antrea-agent's answer carries no grpc-status")}
	}
	code, err := strconv.Atoi(value)
	if err != nil {
		return &callFailure{kind: callFailed, cause: fmt.Errorf("antrea-agent's answer carries grpc-status %q", value)}
	}
	if decoded, err := url.PathUnescape(message); err == nil {
		message = decoded
	}
	return classifyStatus(code, message)
}

// classifyStatus sorts the gRPC status of a call that reached the agent.
func classifyStatus(code int, message string) *callFailure {
	switch code {
	case grpcOK:
		return nil
	case grpcUnavailable:
		return &callFailure{kind: agentUnreachable, cause: fmt.Errorf("lost the connection to antrea-agent: %s", message)}
	case grpcDeadlineExceeded:
		return &callFailure{kind: agentTimedOut, cause: fmt.Errorf("rpc error: code = DeadlineExceeded desc = %s", message)}
	default:
		return &callFailure{kind: callFailed, cause: fmt.Errorf("rpc error: code = %d desc = %s", code, message)}
	}
}

// unframe takes the one message out of a gRPC answer body.
func unframe(body []byte) (*agentResponse, error) {
	if len(body) < 5 {
		return nil, fmt.Errorf("antrea-agent's answer is %d bytes, shorter than a gRPC frame", len(body))
	}
	if body[0] != 0 {
		return nil, errors.New("antrea-agent's answer is compressed, which the shim never asks for")
	}
	n := binary.BigEndian.Uint32(body[1:5])
	if n > maxAnswer || int(n) != len(body)-5 {
		return nil, fmt.Errorf("antrea-agent's answer frame says %d bytes, holds %d", n, len(body)-5)
	}
	return unmarshalResponse(body[5:])
}
