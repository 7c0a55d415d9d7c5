package shim

import (
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/containernetworking/cni/pkg/types"
)

// failureKind says why a call did not bring back the agent's answer.
type failureKind int

const (
	// agentUnreachable: no connection to the socket (missing, stale or refused), or the
	// connection broke before the answer: the agent is not running or just died.
	agentUnreachable failureKind = iota
	// agentTimedOut: the agent accepted the command but did not answer in time.
	agentTimedOut
	// callFailed: any other failure of the call itself.
	callFailed
)

// callFailure is a call that did not bring back the agent's answer.
type callFailure struct {
	kind  failureKind
	cause error
}

func (f *callFailure) Error() string { return f.cause.Error() }

func (f *callFailure) Unwrap() error { return f.cause }

// describeFailure says, for the user, why the agent's answer did not arrive.
func describeFailure(command string, f *callFailure, socket string, timeout time.Duration) string {
	switch f.kind {
	case agentUnreachable:
		var opErr *net.OpError
		switch {
		case errors.As(f.cause, &opErr) && opErr.Timeout():
			return fmt.Sprintf("antrea-agent is not answering on this Node: %v", f.cause)
		case errors.As(f.cause, &opErr) && opErr.Op == "dial":
			return fmt.Sprintf("antrea-agent is not running on this Node: %v", f.cause)
		default:
			return fmt.Sprintf("antrea-agent is not available on this Node: %v", f.cause)
		}
	case agentTimedOut:
		return fmt.Sprintf("antrea-agent did not answer %s within %s (socket %s)", command, timeout, socket)
	default:
		return fmt.Sprintf("call antrea-agent on %s: %v", socket, f.cause)
	}
}

// errorForFailure decides what the shim reports when the agent's answer to ADD, CHECK, GC or
// STATUS did not arrive (the table is in the package documentation; DEL is spooled instead).
func errorForFailure(command string, f *callFailure, socket string, timeout time.Duration) error {
	code := types.ErrInternal
	switch {
	case command == commandStatus:
		code = types.ErrPluginNotAvailable
	case f.kind == agentUnreachable, f.kind == agentTimedOut:
		code = types.ErrTryAgainLater
	}
	return types.NewError(code, describeFailure(command, f, socket, timeout), "")
}
