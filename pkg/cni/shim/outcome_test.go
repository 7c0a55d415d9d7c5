package shim

import (
	"errors"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestErrorForFailure(t *testing.T) {
	const socket = "/var/run/antrea/cni.sock"
	noSocket := &net.OpError{Op: "dial", Net: "unix", Addr: &net.UnixAddr{Name: socket, Net: "unix"},
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ENOENT}}
	unreachable := &callFailure{kind: agentUnreachable, cause: noSocket}
	connectTimedOut := &callFailure{kind: agentUnreachable, cause: &net.OpError{Op: "dial", Net: "unix",
		Addr: &net.UnixAddr{Name: socket, Net: "unix"}, Err: os.ErrDeadlineExceeded}}
	connectionLost := classifyStatus(grpcUnavailable, "error reading from server: EOF")
	timedOut := &callFailure{kind: agentTimedOut, cause: status.Error(codes.DeadlineExceeded, "context deadline exceeded")}
	failed := &callFailure{kind: callFailed, cause: status.Error(codes.Internal, "grpc: error while marshaling")}
	notRunning := "antrea-agent is not running on this Node: dial unix /var/run/antrea/cni.sock: connect: no such file or directory"

	tests := []struct {
		name     string
		command  string
		failure  *callFailure
		wantCode uint
		wantMsg  string
	}{
		{name: "ADD with the agent down asks to try again later", command: commandAdd, failure: unreachable, wantCode: 11, wantMsg: notRunning},
		{name: "CHECK with the agent down asks to try again later", command: commandCheck, failure: unreachable, wantCode: 11, wantMsg: notRunning},
		{name: "GC with the agent down asks to try again later", command: commandGC, failure: unreachable, wantCode: 11, wantMsg: notRunning},
		{name: "ADD with an agent that does not accept the connection asks to try again later", command: commandAdd, failure: connectTimedOut, wantCode: 11, wantMsg: "antrea-agent is not answering on this Node: dial unix"},
		{name: "ADD that lost the connection asks to try again later", command: commandAdd, failure: connectionLost, wantCode: 11, wantMsg: "antrea-agent is not available on this Node: lost the connection to antrea-agent: error reading from server: EOF"},
		{name: "STATUS with the agent down reports the plugin unavailable", command: commandStatus, failure: unreachable, wantCode: 50, wantMsg: notRunning},
		{name: "ADD the agent does not answer in time asks to try again later", command: commandAdd, failure: timedOut, wantCode: 11, wantMsg: "antrea-agent did not answer ADD within 2m0s"},
		{name: "STATUS the agent does not answer in time reports the plugin unavailable", command: commandStatus, failure: timedOut, wantCode: 50, wantMsg: "antrea-agent did not answer STATUS"},
		{name: "any other call failure is an internal error", command: commandAdd, failure: failed, wantCode: 999, wantMsg: "call antrea-agent on /var/run/antrea/cni.sock: rpc error: code = Internal"},
		{name: "any other STATUS failure reports the plugin unavailable", command: commandStatus, failure: failed, wantCode: 50, wantMsg: "call antrea-agent on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := errorForFailure(tt.command, tt.failure, socket, 2*time.Minute)
			var cniErr *types.Error
			if !errors.As(err, &cniErr) {
				t.Fatalf("error = %v, want a CNI error", err)
			}
			if cniErr.Code != tt.wantCode || !strings.HasPrefix(cniErr.Msg, tt.wantMsg) {
				t.Errorf("error = {%d %q}, want code %d and a message starting with %q", cniErr.Code, cniErr.Msg, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestClassifyStatus(t *testing.T) {
	tests := []struct {
		name string
		code int
		want failureKind
		ok   bool
	}{
		{name: "OK is no failure", code: 0, ok: true},
		{name: "a broken connection means the agent is unreachable", code: int(codes.Unavailable), want: agentUnreachable},
		{name: "a deadline means the agent timed out", code: int(codes.DeadlineExceeded), want: agentTimedOut},
		{name: "an unimplemented method is a failed call", code: int(codes.Unimplemented), want: callFailed},
		{name: "an internal error is a failed call", code: int(codes.Internal), want: callFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := classifyStatus(tt.code, "boom")
			if tt.ok != (got == nil) || (got != nil && got.kind != tt.want) {
				t.Errorf("classifyStatus(%d) = %+v, want kind %d (ok %v)", tt.code, got, tt.want, tt.ok)
			}
		})
	}
}
