// Package shim is the `antrea` CNI plugin binary's whole job: it forwards each CNI command (the
// CNI environment and the stdin configuration) to antrea-agent over the agent's gRPC unix socket
// and prints the agent's answer. It holds no networking logic and no Kubernetes client. Its only
// decisions of its own keep the Node safe when the agent is away:
//
//   - Pods that ask for no secondary network never depend on the agent. The chained antrea entry
//     declares the runtime capability io.kubernetes.cri.pod-annotations; when the runtime passes
//     the Pod's annotations and k8s.v1.cni.cncf.io/networks is absent or empty, ADD prints the
//     previous result (in the configuration's cniVersion) and CHECK succeeds, without dialling
//     the agent. A runtime that passes no annotations gets the agent's answer, as before.
//   - DEL never blocks and never loses work. It is offered to the agent for at most DelTimeout;
//     when the answer does not come (no agent, an agent too slow, a broken call) the DEL is
//     written to the Node's DEL spool (package nodestate/spool) and reported done; the agent runs
//     it when it is back. Only a full spool makes DEL fail, with "try again later".
//   - Every ADD records its sandbox (container ID, netns, Pod) on the Node (package
//     nodestate/sandbox), also on the path that skips the agent, so that the agent can later
//     attach networks to the running Pod; DEL removes the record.
//
// The socket is the configuration's "cniSocket", else $ANTREA_CNI_SOCKET, else
// /var/run/antrea/cni.sock; the state directories sit next to it (package nodestate). The agent's
// answer is printed as it is: its result bytes on stdout, or its CNI error with the agent's code.
// When the answer does not arrive, the shim reports:
//
//	                                        ADD, CHECK, GC   DEL                 STATUS
//	agent unreachable (no socket, refused,  11 try again     spooled, success    50 not available
//	  connection lost before the answer)
//	agent accepted but did not answer       11 try again     spooled, success    50 not available
//	  within the command's timeout
//	any other failure of the call           999 internal     spooled, success    50 not available
//	DEL could not be spooled (spool full)                    11 try again
//
// The shim links neither grpc-go, the protobuf runtime nor net/http (see wire.go): the call to
// the agent is a minimal HTTP/2 exchange of its own, made only when the agent is asked, so the
// path that answers alone costs about what a minimal plugin costs.
package shim

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/types/create"
	"github.com/containernetworking/cni/pkg/version"

	"github.com/podvlan/podvlan/pkg/cni/nodestate"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/sandbox"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/spool"
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
	// DelTimeout bounds how long DEL waits for the agent before spooling: Pod deletion must
	// never wait on an agent that is restarting or overloaded, and the agent's DEL is
	// idempotent, so running the spooled copy after a slow original is harmless.
	DelTimeout = 5 * time.Second
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
	// delTimeout is DelTimeout; tests shorten it.
	delTimeout time.Duration
}

// New returns a plugin that prints results to stdout, notes to stderr and reads the environment
// through getenv (os.Getenv in the binary).
func New(stdout, stderr io.Writer, getenv func(string) string) *Plugin {
	return &Plugin{stdout: stdout, stderr: stderr, getenv: getenv, delTimeout: DelTimeout}
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

// run answers one command: from its own input when answerWithoutAgent says so, else with the
// agent's answer; a DEL the agent does not take is spooled.
func (p *Plugin) run(command string, args *skel.CmdArgs) (err error) {
	conf, err := parseConfig(args.StdinData)
	if err != nil {
		return err
	}
	socket := socketPath(conf, p.getenv)
	dirs := nodestate.ForSocket(socket)
	if command == commandAdd {
		p.recordSandbox(dirs.Sandboxes, args, conf)
		defer func() {
			// A sandbox whose ADD failed never runs: the runtime tears it down. Its record must
			// not lead the agent to attach networks to it (a restarted agent would otherwise
			// treat it as a running Pod until its DEL comes).
			if err != nil {
				p.forgetSandbox(dirs.Sandboxes, args)
			}
		}()
	}
	if answerWithoutAgent(command, conf) {
		return p.answerLocally(command, conf)
	}

	timeout := CommandTimeout
	switch command {
	case commandStatus:
		timeout = StatusTimeout
	case commandDel:
		timeout = p.delTimeout
	}
	req := &agentRequest{
		Command:       command,
		ContainerID:   args.ContainerID,
		Netns:         args.Netns,
		IfName:        args.IfName,
		Args:          args.Args,
		Path:          args.Path,
		CNIVersion:    conf.CNIVersion,
		NetworkConfig: args.StdinData,
	}

	resp, failure := call(command, socket, timeout, req)
	if failure != nil {
		if command == commandDel {
			return p.spoolDel(dirs, args, conf, failure, socket, timeout)
		}
		return errorForFailure(command, failure, socket, timeout)
	}
	if cniErr := resp.Error; cniErr != nil {
		return types.NewError(uint(cniErr.Code), cniErr.Msg, cniErr.Details)
	}
	switch command {
	case commandDel:
		p.forgetSandbox(dirs.Sandboxes, args)
		return nil
	case commandAdd:
	default:
		return nil
	}
	if len(resp.Result) == 0 {
		return types.NewError(types.ErrInternal, "antrea-agent answered ADD without a result", "")
	}
	if _, err := p.stdout.Write(resp.Result); err != nil {
		return types.NewError(types.ErrIOFailure, "write the result to stdout", err.Error())
	}
	return nil
}

// answerLocally answers an ADD or CHECK that answerWithoutAgent accepted: ADD prints the
// previous result converted to the configuration's cniVersion, as the specification asks of a
// chained plugin that changes nothing.
func (p *Plugin) answerLocally(command string, conf *shimConfig) error {
	if command != commandAdd {
		return nil
	}
	// prevResult names its own version; parse it in that one, then convert.
	var own struct {
		CNIVersion string `json:"cniVersion"`
	}
	_ = json.Unmarshal(conf.PrevResult, &own)
	if own.CNIVersion == "" {
		own.CNIVersion = conf.CNIVersion
	}
	prev, err := create.Create(own.CNIVersion, conf.PrevResult)
	if err == nil {
		prev, err = prev.GetAsVersion(conf.CNIVersion)
	}
	if err != nil {
		return types.NewError(types.ErrDecodingFailure, "invalid prevResult in the network configuration", err.Error())
	}
	if err := prev.PrintTo(p.stdout); err != nil {
		return types.NewError(types.ErrIOFailure, "write the result to stdout", err.Error())
	}
	return nil
}

// recordSandbox writes the sandbox record of an ADD. A failure is noted on stderr and does not
// fail the ADD: the record only serves networks added to the Pod later, and a Pod must not
// depend on podvlan's state directory to start.
func (p *Plugin) recordSandbox(dir string, args *skel.CmdArgs, conf *shimConfig) {
	pod := podFromArgs(args.Args)
	rec := sandbox.Record{ContainerID: args.ContainerID, Netns: args.Netns, PodNamespace: pod.Namespace,
		PodName: pod.Name, PodUID: pod.UID, IfName: args.IfName, Chained: isChained(conf) && !isAbsent(conf.PrevResult),
		Added: time.Now().UTC()}
	if err := sandbox.Write(dir, rec); err != nil {
		p.note(args, fmt.Sprintf("cannot record the sandbox for antrea-agent: %v", err))
	}
}

// forgetSandbox removes the sandbox record once its DEL is done or spooled.
func (p *Plugin) forgetSandbox(dir string, args *skel.CmdArgs) {
	if err := sandbox.Remove(dir, args.ContainerID); err != nil {
		p.note(args, fmt.Sprintf("cannot remove the sandbox record: %v", err))
	}
}

// spoolDel writes a DEL the agent did not take to the spool and reports it done; only a DEL
// that cannot be spooled fails, with "try again later".
func (p *Plugin) spoolDel(dirs nodestate.Dirs, args *skel.CmdArgs, conf *shimConfig, failure *callFailure, socket string, timeout time.Duration) error {
	reason := describeFailure(commandDel, failure, socket, timeout)
	entry := spool.Entry{ContainerID: args.ContainerID, Netns: args.Netns, IfName: args.IfName, Args: args.Args,
		Path: args.Path, Config: args.StdinData, CNIVersion: conf.CNIVersion, Spooled: time.Now().UTC(), Reason: reason}
	if args.ContainerID == "" {
		p.note(args, reason+"; DEL without a container ID has nothing to release, reported done")
		return nil
	}
	if err := spool.Write(dirs.Spool, entry); err != nil {
		return types.NewError(types.ErrTryAgainLater, fmt.Sprintf("%s, and the DEL could not be spooled for later: %v", reason, err), "")
	}
	p.forgetSandbox(dirs.Sandboxes, args)
	p.note(args, reason+"; DEL spooled in "+dirs.Spool+", antrea-agent runs it when it is back")
	return nil
}

func (p *Plugin) note(args *skel.CmdArgs, msg string) {
	_, _ = fmt.Fprintf(p.stderr, "antrea: container %s interface %s: %s\n", args.ContainerID, args.IfName, msg)
}
