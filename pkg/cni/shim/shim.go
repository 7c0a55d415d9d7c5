// Package shim is the `antrea` CNI plugin binary's whole job: it forwards each CNI command (the
// CNI environment and the stdin configuration) to antrea-agent over the agent's gRPC unix socket
// and prints the agent's answer. It holds no networking logic and no Kubernetes client.
//
// The socket is the configuration's "cniSocket", else $ANTREA_CNI_SOCKET, else
// /var/run/antrea/cni.sock. The agent's answer is printed as it is: its result bytes on stdout, or
// its CNI error with the agent's code. When the answer does not arrive, the shim reports:
//
//	                                        ADD, CHECK, GC   DEL                 STATUS
//	agent unreachable (no socket, refused,  11 try again     success, note on    50 not available
//	  connection lost before the answer)                      stderr
//	agent accepted but did not answer       11 try again     11 try again        50 not available
//	  within the command's timeout
//	any other failure of the call           999 internal     999 internal        50 not available
//
// DEL succeeds when the agent is unreachable so that a Node without a running agent never wedges
// Pod deletion (the kubelet would retry the sandbox teardown forever). Nothing leaks: on start the
// agent reconciles its OVS ports and IPPool allocations against live Pods and releases what the
// vanished container held.
package shim

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/podvlan/podvlan/pkg/cni/cnipb"
)

// SupportedVersions are the CNI specification versions the plugin accepts and VERSION reports.
var SupportedVersions = version.PluginSupports("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")

const (
	// ConnectTimeout bounds connecting to the agent: a local socket answers at once or not at all.
	ConnectTimeout = 3 * time.Second
	// CommandTimeout bounds ADD, CHECK, DEL and GC. The runtime usually kills the plugin earlier
	// (the kubelet's runtime request timeout is 2 minutes); the bound exists so that the shim
	// never outlives a hung agent when the runtime sets no deadline.
	CommandTimeout = 2 * time.Minute
	// StatusTimeout bounds STATUS, which the runtime polls and which should answer at once.
	StatusTimeout = 10 * time.Second
)

const (
	commandAdd    = "ADD"
	commandCheck  = "CHECK"
	commandDel    = "DEL"
	commandGC     = "GC"
	commandStatus = "STATUS"
)

// Plugin forwards CNI commands to antrea-agent. Create it with New.
type Plugin struct {
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
}

// New returns a plugin that prints results to stdout, notes to stderr and reads the environment
// through getenv (os.Getenv in the binary).
func New(stdout, stderr io.Writer, getenv func(string) string) *Plugin {
	return &Plugin{stdout: stdout, stderr: stderr, getenv: getenv}
}

// Funcs returns the callbacks for skel.PluginMainFuncs; VERSION is answered by skel itself.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{
		Add:    func(args *skel.CmdArgs) error { return p.run(commandAdd, args) },
		Check:  func(args *skel.CmdArgs) error { return p.run(commandCheck, args) },
		Del:    func(args *skel.CmdArgs) error { return p.run(commandDel, args) },
		GC:     func(args *skel.CmdArgs) error { return p.run(commandGC, args) },
		Status: func(args *skel.CmdArgs) error { return p.run(commandStatus, args) },
	}
}

// run forwards one command and turns the agent's answer into the plugin's output.
func (p *Plugin) run(command string, args *skel.CmdArgs) error {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	socket := socketPath(conf, p.getenv)
	timeout := CommandTimeout
	if command == commandStatus {
		timeout = StatusTimeout
	}
	req := &cnipb.CniCmdRequest{
		Command:       command,
		ContainerId:   args.ContainerID,
		Netns:         args.Netns,
		Ifname:        args.IfName,
		Args:          args.Args,
		Path:          args.Path,
		CniVersion:    conf.CNIVersion,
		NetworkConfig: args.StdinData,
	}

	resp, failure := call(command, socket, timeout, req)
	if failure != nil {
		err, note := errorForFailure(command, failure, socket, timeout)
		if note != "" {
			_, _ = fmt.Fprintf(p.stderr, "antrea: container %s interface %s: %s\n", args.ContainerID, args.IfName, note)
		}
		return err
	}
	if cniErr := resp.GetError(); cniErr != nil {
		return types.NewError(uint(cniErr.GetCode()), cniErr.GetMsg(), cniErr.GetDetails())
	}
	if command != commandAdd {
		return nil
	}
	if len(resp.GetResult()) == 0 {
		return types.NewError(types.ErrInternal, "antrea-agent answered ADD without a result", "")
	}
	if _, err := p.stdout.Write(resp.GetResult()); err != nil {
		return types.NewError(types.ErrIOFailure, "write the result to stdout", err.Error())
	}
	return nil
}

// call connects to the agent and makes one call, within timeout overall.
func call(command, socket string, timeout time.Duration, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, *callFailure) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	// Connecting first, by hand, tells "no agent" (nothing listens on the socket) apart from
	// failures of an agent that is there.
	dialer := &net.Dialer{Timeout: ConnectTimeout}
	conn, err := dialer.DialContext(ctx, "unix", socket)
	if err != nil {
		return nil, &callFailure{kind: agentUnreachable, cause: err}
	}
	client, err := grpc.NewClient("passthrough:///antrea-agent",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(reuseFirst(conn, dialer, socket)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: ConnectTimeout}),
	)
	if err != nil {
		_ = conn.Close()
		return nil, &callFailure{kind: callFailed, cause: fmt.Errorf("create gRPC client: %w", err)}
	}
	defer client.Close()

	cni := cnipb.NewCniClient(client)
	method := map[string]func(context.Context, *cnipb.CniCmdRequest, ...grpc.CallOption) (*cnipb.CniCmdResponse, error){
		commandAdd:    cni.CmdAdd,
		commandCheck:  cni.CmdCheck,
		commandDel:    cni.CmdDel,
		commandGC:     cni.CmdGC,
		commandStatus: cni.CmdStatus,
	}[command]
	resp, err := method(ctx, req)
	if err != nil {
		return nil, classifyRPCError(err)
	}
	return resp, nil
}

// reuseFirst hands gRPC the connection already made, and dials again only if gRPC reconnects.
func reuseFirst(first net.Conn, dialer *net.Dialer, socket string) func(context.Context, string) (net.Conn, error) {
	var mu sync.Mutex
	return func(ctx context.Context, _ string) (net.Conn, error) {
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
