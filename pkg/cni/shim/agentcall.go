package shim

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// The agent serves gRPC (pkg/cni/server). A unary gRPC call is one HTTP/2 POST: the message in a
// five-byte frame (compression flag, length) as the body, the answer framed the same way, and the
// call's status in the grpc-status and grpc-message trailers (or headers, when there is no
// answer). The shim makes that call with the standard library's HTTP/2 client over the unix
// socket, which costs far less at start-up than grpc-go (see wire.go).

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
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	method, ok := methods[command]
	if !ok {
		return nil, &callFailure{kind: callFailed, cause: fmt.Errorf("unknown CNI command %q", command)}
	}

	// Connecting first, by hand, tells "no agent" (nothing listens on the socket) apart from
	// failures of an agent that is there.
	dialer := &net.Dialer{Timeout: ConnectTimeout}
	conn, err := dialer.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, &callFailure{kind: agentUnreachable, cause: err}
	}
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	transport := &http.Transport{Protocols: &protocols, DialContext: reuseFirst(conn, dialer, socket)}
	defer transport.CloseIdleConnections()

	msg := req.marshal()
	body := make([]byte, 5, 5+len(msg))
	binary.BigEndian.PutUint32(body[1:], uint32(len(msg)))
	body = append(body, msg...)
	httpReq, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://antrea-agent/"+grpcService+"/"+method, bytes.NewReader(body))
	if err != nil {
		_ = conn.Close()
		return nil, &callFailure{kind: callFailed, cause: err}
	}
	httpReq.Header.Set("Content-Type", "application/grpc")
	httpReq.Header.Set("TE", "trailers")

	httpResp, err := transport.RoundTrip(httpReq)
	if err != nil {
		return nil, transportFailure(ctx, err)
	}
	defer httpResp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(httpResp.Body, maxAnswer+6))
	if err != nil {
		return nil, transportFailure(ctx, err)
	}
	if httpResp.StatusCode != http.StatusOK {
		return nil, &callFailure{kind: callFailed, cause: fmt.Errorf("antrea-agent answered HTTP %s", httpResp.Status)}
	}
	if failure := grpcStatus(httpResp); failure != nil {
		return nil, failure
	}
	resp, err := unframe(answer)
	if err != nil {
		return nil, &callFailure{kind: callFailed, cause: err}
	}
	return resp, nil
}

// transportFailure sorts an error of the HTTP/2 exchange: the deadline is a slow agent, anything
// else a connection that broke before the answer.
func transportFailure(ctx context.Context, err error) *callFailure {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return &callFailure{kind: agentTimedOut, cause: err}
	}
	return &callFailure{kind: agentUnreachable, cause: fmt.Errorf("lost the connection to antrea-agent: %w", err)}
}

// grpcStatus reads the call's status from the trailers (or the headers of an answer without a
// message); nil when it is OK.
func grpcStatus(resp *http.Response) *callFailure {
	value := resp.Trailer.Get("Grpc-Status")
	message := resp.Trailer.Get("Grpc-Message")
	if value == "" {
		value, message = resp.Header.Get("Grpc-Status"), resp.Header.Get("Grpc-Message")
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

// reuseFirst hands the HTTP/2 client the connection already made, and dials again only if it
// reconnects.
func reuseFirst(first net.Conn, dialer *net.Dialer, socket string) func(context.Context, string, string) (net.Conn, error) {
	var mu sync.Mutex
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		mu.Lock()
		conn := first
		first = nil
		mu.Unlock()
		if conn != nil {
			return conn, nil
		}
		return dialer.DialContext(ctx, "unix", socket)
	}
}
