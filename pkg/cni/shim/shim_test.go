package shim

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/podvlan/podvlan/pkg/cni/cnipb"
)

// rawAgent answers every call with a fixed response and records the requests, so that the tests
// see exactly what the shim sends and prints.
type rawAgent struct {
	cnipb.UnimplementedCniServer
	mu       sync.Mutex
	requests []*cnipb.CniCmdRequest
	answer   *cnipb.CniCmdResponse
}

func (a *rawAgent) respond(req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.requests = append(a.requests, req)
	return a.answer, nil
}

func (a *rawAgent) CmdAdd(_ context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return a.respond(req)
}

func (a *rawAgent) CmdCheck(_ context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return a.respond(req)
}

func (a *rawAgent) CmdDel(_ context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return a.respond(req)
}

func (a *rawAgent) CmdGC(_ context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return a.respond(req)
}

func (a *rawAgent) CmdStatus(_ context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return a.respond(req)
}

func (a *rawAgent) seen() []*cnipb.CniCmdRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*cnipb.CniCmdRequest(nil), a.requests...)
}

func socketInTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cnishim-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return filepath.Join(dir, "cni.sock")
}

func startRawAgent(t *testing.T, answer *cnipb.CniCmdResponse) (*rawAgent, string) {
	t.Helper()
	socket := socketInTempDir(t)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	agent := &rawAgent{answer: answer}
	srv := grpc.NewServer()
	cnipb.RegisterCniServer(srv, agent)
	go func() { _ = srv.Serve(listener) }()
	t.Cleanup(srv.Stop)
	return agent, socket
}

// runCommand runs one command of a plugin whose environment points at socket.
func runCommand(t *testing.T, command, socket string, args *skel.CmdArgs) (error, string, string) { //nolint:staticcheck // ST1008: the error first reads like the CNI result it is
	t.Helper()
	var stdout, stderr bytes.Buffer
	p := New(&stdout, &stderr, func(key string) string {
		if key == SocketEnv {
			return socket
		}
		return ""
	})
	funcs := p.Funcs()
	run := map[string]func(*skel.CmdArgs) error{
		commandAdd: funcs.Add, commandCheck: funcs.Check, commandDel: funcs.Del, commandGC: funcs.GC, commandStatus: funcs.Status,
	}[command]
	err := run(args)
	return err, stdout.String(), stderr.String()
}

func podArgs() *skel.CmdArgs {
	return &skel.CmdArgs{
		ContainerID: "4f1a",
		Netns:       "/var/run/netns/cni-1234",
		IfName:      "net1",
		Args:        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0",
		Path:        "/opt/cni/bin",
		StdinData:   []byte(`{"cniVersion":"0.4.0","name":"vlan100","type":"antrea","vlan":100}`),
	}
}

func TestForwardsTheInvocationUnchanged(t *testing.T) {
	for _, command := range []string{commandAdd, commandCheck, commandDel, commandGC, commandStatus} {
		t.Run(command, func(t *testing.T) {
			agent, socket := startRawAgent(t, &cnipb.CniCmdResponse{Result: []byte(`{"cniVersion":"0.4.0"}`)})
			args := podArgs()
			if err, _, _ := runCommand(t, command, socket, args); err != nil {
				t.Fatalf("%s: %v", command, err)
			}
			want := &cnipb.CniCmdRequest{
				Command: command, ContainerId: args.ContainerID, Netns: args.Netns, Ifname: args.IfName,
				Args: args.Args, Path: args.Path, CniVersion: "0.4.0", NetworkConfig: args.StdinData,
			}
			if seen := agent.seen(); len(seen) != 1 || !proto.Equal(seen[0], want) {
				t.Errorf("agent got %v, want exactly %v", seen, want)
			}
		})
	}
}

func TestPrintsTheAgentsAnswer(t *testing.T) {
	verbatim := "{\"cniVersion\":\"0.4.0\",  \"interfaces\":[{\"name\":\"net1\"}], \"x-extra\":true}\n"
	tests := []struct {
		name       string
		command    string
		answer     *cnipb.CniCmdResponse
		wantStdout string
		wantCode   uint // 0: success
		wantMsg    string
		wantDetail string
	}{
		{name: "ADD prints the agent's result byte for byte", command: commandAdd,
			answer: &cnipb.CniCmdResponse{Result: []byte(verbatim)}, wantStdout: verbatim},
		{name: "DEL prints nothing on success", command: commandDel, answer: &cnipb.CniCmdResponse{}},
		{name: "an agent's CNI error keeps its code, message and details", command: commandAdd,
			answer:   &cnipb.CniCmdResponse{Error: &cnipb.CniError{Code: 7, Msg: "unknown network ns1/vlan300", Details: "NetworkAttachmentDefinition not found"}},
			wantCode: 7, wantMsg: "unknown network ns1/vlan300", wantDetail: "NetworkAttachmentDefinition not found"},
		{name: "a STATUS error keeps its code", command: commandStatus,
			answer: &cnipb.CniCmdResponse{Error: &cnipb.CniError{Code: 50, Msg: "OVSDB not connected"}}, wantCode: 50, wantMsg: "OVSDB not connected"},
		{name: "an ADD answer without a result is an internal error", command: commandAdd,
			answer: &cnipb.CniCmdResponse{}, wantCode: 999, wantMsg: "antrea-agent answered ADD without a result"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, socket := startRawAgent(t, tt.answer)
			err, stdout, _ := runCommand(t, tt.command, socket, podArgs())
			if stdout != tt.wantStdout {
				t.Errorf("stdout = %q, want %q", stdout, tt.wantStdout)
			}
			if tt.wantCode == 0 {
				if err != nil {
					t.Errorf("error = %v, want success", err)
				}
				return
			}
			var cniErr *types.Error
			if !errors.As(err, &cniErr) || cniErr.Code != tt.wantCode || cniErr.Msg != tt.wantMsg || cniErr.Details != tt.wantDetail {
				t.Errorf("error = %#v, want {%d %q %q}", err, tt.wantCode, tt.wantMsg, tt.wantDetail)
			}
		})
	}
}

// TestSocketThatHangsUp covers an agent that dies between accepting the connection and answering.
func TestSocketThatHangsUp(t *testing.T) {
	socket := socketInTempDir(t)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = listener.Close() })
	go func() {
		for {
			conn, err := listener.Accept()
			if err != nil {
				return
			}
			_ = conn.Close()
		}
	}()
	tests := []struct {
		command  string
		wantCode uint // 0: success
	}{
		{command: commandAdd, wantCode: 11},
		{command: commandDel},
		{command: commandStatus, wantCode: 50},
	}
	for _, tt := range tests {
		t.Run(tt.command, func(t *testing.T) {
			err, stdout, stderr := runCommand(t, tt.command, socket, podArgs())
			if stdout != "" {
				t.Errorf("stdout = %q, want nothing", stdout)
			}
			if tt.wantCode == 0 {
				if err != nil || !strings.Contains(stderr, "antrea-agent is not available on this Node") || !strings.Contains(stderr, "DEL spooled") {
					t.Errorf("error = %v, stderr = %q; want success with a note that the DEL was spooled", err, stderr)
				}
				return
			}
			var cniErr *types.Error
			if !errors.As(err, &cniErr) || cniErr.Code != tt.wantCode || !strings.HasPrefix(cniErr.Msg, "antrea-agent is not available on this Node") {
				t.Errorf("error = %#v, want code %d saying the agent is not available", err, tt.wantCode)
			}
		})
	}
}

// TestLargeConfigAndResult crosses HTTP/2 flow-control windows and frame sizes both ways.
func TestLargeConfigAndResult(t *testing.T) {
	result := `{"cniVersion":"0.4.0","dns":{"search":["` + strings.Repeat("s", 300<<10) + `"]}}`
	agent, socket := startRawAgent(t, &cnipb.CniCmdResponse{Result: []byte(result)})
	args := podArgs()
	args.StdinData = []byte(`{"cniVersion":"0.4.0","name":"big","type":"antrea","x":"` + strings.Repeat("c", 500<<10) + `"}`)
	err, stdout, _ := runCommand(t, commandAdd, socket, args)
	if err != nil {
		t.Fatalf("ADD: %v", err)
	}
	if stdout != result {
		t.Errorf("stdout is %d bytes, want the agent's %d-byte result", len(stdout), len(result))
	}
	if seen := agent.seen(); len(seen) != 1 || !bytes.Equal(seen[0].NetworkConfig, args.StdinData) {
		t.Errorf("agent did not get the %d-byte configuration unchanged", len(args.StdinData))
	}
}

// TestAnAgentWithoutTheService covers a gRPC status without an answer (a trailers-only response).
func TestAnAgentWithoutTheService(t *testing.T) {
	socket := socketInTempDir(t)
	listener, err := net.Listen("unix", socket)
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	go func() { _ = srv.Serve(listener) }()
	t.Cleanup(srv.Stop)
	err, stdout, _ := runCommand(t, commandAdd, socket, podArgs())
	var cniErr *types.Error
	if !errors.As(err, &cniErr) || cniErr.Code != types.ErrInternal || !strings.Contains(cniErr.Msg, "code = 12") ||
		!strings.Contains(cniErr.Msg, "unknown service podvlan.cni.v1.Cni") || stdout != "" {
		t.Errorf("ADD = %v, stdout %q; want an internal error carrying the gRPC status", err, stdout)
	}
}
