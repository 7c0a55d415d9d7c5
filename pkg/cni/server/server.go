// Package server is the agent side of the CNI shim protocol: a gRPC server on a root-only unix
// socket that turns each call of the `antrea` shim into a call of a Handler, and the Handler's
// outcome into the CNI result or CNI error the shim prints.
//
// The socket is created with mode 0600; its directory is created with mode 0700 when missing (an
// existing directory is left as it is). A stale socket left by a dead agent is replaced; a path
// that is not a socket, or a socket another process still serves, is an error.
//
// Error codes the shim prints, by what happened in the agent (codes 1-99 are the CNI
// specification's; package shim documents what the shim reports when it cannot reach the agent):
//
//	handler returned a *types.Error (also wrapped)  its code, message and details
//	handler returned a context deadline/cancel      11 try again later (STATUS: 50 not available)
//	handler returned another error                  999 internal error (STATUS: 50 not available)
//	handler panicked                                999 internal error
//	ADD result not encodable in the config version  1 incompatible CNI version
//	request CNI_COMMAND disagrees with the method   4 invalid environment variables
package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	"google.golang.org/grpc"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/cni/cnipb"
)

// DefaultGracePeriod is how long Serve lets in-flight commands finish once its context is done.
const DefaultGracePeriod = 10 * time.Second

// Server serves the shim protocol on one unix socket. Create it with New.
type Server struct {
	socketPath string
	handler    Handler
	onOutcome  OutcomeFunc

	grpcServer *grpc.Server
	socketInfo os.FileInfo
	serveDone  chan struct{}
	serveErr   error
	stopOnce   sync.Once
}

// OutcomeFunc is told the outcome of each answered command: its CNI error code (0 for success)
// and how long the agent took to answer.
type OutcomeFunc func(command string, code uint32, took time.Duration)

// OnOutcome registers f to be called once for every command answered, including those refused as
// malformed. Call it before Start; f must be safe for concurrent use.
func (s *Server) OnOutcome(f OutcomeFunc) { s.onOutcome = f }

// New returns a server that will dispatch the commands arriving on socketPath to handler.
func New(socketPath string, handler Handler) *Server {
	return &Server{socketPath: socketPath, handler: handler}
}

// Start creates the socket (see the package documentation for its mode and directory) and serves
// it in the background until Stop.
func (s *Server) Start() error {
	if s.grpcServer != nil {
		return fmt.Errorf("CNI server on %s already started", s.socketPath)
	}
	listener, info, err := listenUnix(s.socketPath)
	if err != nil {
		return fmt.Errorf("start CNI server: %w", err)
	}
	s.socketInfo = info
	s.grpcServer = grpc.NewServer()
	cnipb.RegisterCniServer(s.grpcServer, &service{handler: s.handler, onOutcome: s.onOutcome})
	s.serveDone = make(chan struct{})
	go func() {
		defer close(s.serveDone)
		if err := s.grpcServer.Serve(listener); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			s.serveErr = err
			klog.ErrorS(err, "CNI server stopped serving", "socket", s.socketPath)
		}
	}()
	klog.InfoS("CNI server listening", "socket", s.socketPath)
	return nil
}

// Stop stops accepting commands, lets in-flight ones finish until ctx is done, then closes what
// is left and removes the socket (unless another server has replaced it meanwhile). Stopping a
// server that never started, or twice, does nothing.
func (s *Server) Stop(ctx context.Context) {
	if s.grpcServer == nil {
		return
	}
	s.stopOnce.Do(func() {
		graceful := make(chan struct{})
		go func() {
			s.grpcServer.GracefulStop()
			close(graceful)
		}()
		select {
		case <-graceful:
		case <-ctx.Done():
			klog.InfoS("CNI server grace period over, cancelling in-flight commands", "socket", s.socketPath)
			s.grpcServer.Stop()
			<-graceful
		}
		<-s.serveDone
		if err := removeIfSame(s.socketPath, s.socketInfo); err != nil {
			klog.ErrorS(err, "Cannot remove CNI socket", "socket", s.socketPath)
		}
		klog.InfoS("CNI server stopped", "socket", s.socketPath)
	})
}

// Serve runs a server on socketPath until ctx is done, then stops it, giving in-flight commands
// DefaultGracePeriod to finish. It returns an error if the server cannot start or stops serving
// on its own.
func Serve(ctx context.Context, socketPath string, handler Handler) error {
	s := New(socketPath, handler)
	if err := s.Start(); err != nil {
		return err
	}
	var err error
	select {
	case <-ctx.Done():
	case <-s.serveDone:
		err = fmt.Errorf("CNI server on %s: %w", socketPath, s.serveErr)
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultGracePeriod)
	defer cancel()
	s.Stop(stopCtx)
	return err
}

// service implements the generated gRPC interface on top of a Handler.
type service struct {
	cnipb.UnimplementedCniServer
	handler   Handler
	onOutcome OutcomeFunc
}

func (s *service) CmdAdd(ctx context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return s.serve(ctx, CommandAdd, req), nil
}

func (s *service) CmdCheck(ctx context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return s.serve(ctx, CommandCheck, req), nil
}

func (s *service) CmdDel(ctx context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return s.serve(ctx, CommandDel, req), nil
}

func (s *service) CmdGC(ctx context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return s.serve(ctx, CommandGC, req), nil
}

func (s *service) CmdStatus(ctx context.Context, req *cnipb.CniCmdRequest) (*cnipb.CniCmdResponse, error) {
	return s.serve(ctx, CommandStatus, req), nil
}

// serve runs one command and always answers with a response: a failure, even a panic of the
// handler, travels as a CNI error rather than as a gRPC error, so that the shim can print it.
func (s *service) serve(ctx context.Context, command string, pbReq *cnipb.CniCmdRequest) (resp *cnipb.CniCmdResponse) {
	start := time.Now()
	req := requestFromProto(command, pbReq)
	log := &commandLog{keys: requestLogKeys(req)}
	ctx = context.WithValue(ctx, commandLogKey{}, log)
	if pbReq.GetCommand() != "" && pbReq.GetCommand() != command {
		err := &cnipb.CniError{
			Code: uint32(types.ErrInvalidEnvironmentVariables),
			Msg:  fmt.Sprintf("CNI_COMMAND %q sent to the %s method", pbReq.GetCommand(), command),
		}
		klog.ErrorS(nil, "Rejected malformed CNI request", slices.Concat(log.keys, []any{"reason", err.Msg})...)
		s.observe(command, err.GetCode(), time.Since(start))
		return &cnipb.CniCmdResponse{Error: err}
	}

	defer func() {
		if r := recover(); r != nil {
			klog.ErrorS(nil, "CNI handler panicked", slices.Concat(log.snapshot(), []any{"panic", r, "stack", string(debug.Stack())})...)
			resp = &cnipb.CniCmdResponse{Error: &cnipb.CniError{
				Code:    uint32(types.ErrInternal),
				Msg:     fmt.Sprintf("antrea-agent failed internally while handling %s", command),
				Details: fmt.Sprint(r),
			}}
		}
		took := time.Since(start)
		logOutcome(resp, took, log.snapshot())
		s.observe(command, resp.GetError().GetCode(), took)
	}()
	klog.V(2).InfoS("CNI command received", log.keys...)
	return s.dispatch(ctx, req)
}

func (s *service) dispatch(ctx context.Context, req *Request) *cnipb.CniCmdResponse {
	var err error
	switch req.Command {
	case CommandAdd:
		result, addErr := s.handler.Add(ctx, req)
		if addErr != nil {
			err = addErr
			break
		}
		encoded, encodeErr := encodeResult(result, req.CNIVersion)
		if encodeErr != nil {
			return &cnipb.CniCmdResponse{Error: encodeErr}
		}
		return &cnipb.CniCmdResponse{Result: encoded}
	case CommandCheck:
		err = s.handler.Check(ctx, req)
	case CommandDel:
		err = s.handler.Del(ctx, req)
	case CommandGC:
		err = s.handler.GC(ctx, req)
	case CommandStatus:
		err = s.handler.Status(ctx, req)
	}
	if err != nil {
		return &cnipb.CniCmdResponse{Error: cniErrorFor(req.Command, err)}
	}
	return &cnipb.CniCmdResponse{}
}

func requestFromProto(command string, pbReq *cnipb.CniCmdRequest) *Request {
	return &Request{
		Command:     command,
		ContainerID: pbReq.GetContainerId(),
		Netns:       pbReq.GetNetns(),
		IfName:      pbReq.GetIfname(),
		Args:        pbReq.GetArgs(),
		Path:        pbReq.GetPath(),
		CNIVersion:  pbReq.GetCniVersion(),
		Config:      pbReq.GetNetworkConfig(),
	}
}

// observe tells the OnOutcome function, if any, how a command ended.
func (s *service) observe(command string, code uint32, took time.Duration) {
	if s.onOutcome != nil {
		s.onOutcome(command, code, took)
	}
}

func logOutcome(resp *cnipb.CniCmdResponse, took time.Duration, logKeys []any) {
	keys := slices.Concat(logKeys, []any{"duration", took})
	if cniErr := resp.GetError(); cniErr != nil {
		keys = append(keys, "code", cniErr.GetCode(), "details", cniErr.GetDetails())
		klog.ErrorS(errors.New(cniErr.GetMsg()), "CNI command failed", keys...)
		return
	}
	klog.V(2).InfoS("CNI command succeeded", keys...)
}

// requestLogKeys names the Pod, container and interface of a request for structured logs. The
// network is the handler's to add (AddLogKeys): it parses the configuration, the server does not.
func requestLogKeys(req *Request) []any {
	keys := []any{"command", req.Command}
	if namespace, name := podFromArgs(req.Args); name != "" {
		keys = append(keys, "pod", klog.KRef(namespace, name))
	}
	if req.ContainerID != "" {
		keys = append(keys, "containerID", req.ContainerID)
	}
	if req.IfName != "" {
		keys = append(keys, "interface", req.IfName)
	}
	return keys
}

type commandLogKey struct{}

// commandLog holds the structured log keys of one command; the handler may add to them.
type commandLog struct {
	mu   sync.Mutex
	keys []any
}

func (l *commandLog) snapshot() []any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.keys)
}

// AddLogKeys adds key/value pairs to what the server logs about the outcome of the command ctx
// was passed to, such as the network its configuration names once the handler has parsed it.
// With any other ctx it does nothing.
func AddLogKeys(ctx context.Context, keysAndValues ...any) {
	if l, ok := ctx.Value(commandLogKey{}).(*commandLog); ok {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.keys = append(l.keys, keysAndValues...)
	}
}

// podFromArgs reads K8S_POD_NAMESPACE and K8S_POD_NAME from CNI_ARGS ("K=V;K=V").
func podFromArgs(args string) (namespace, name string) {
	for pair := range strings.SplitSeq(args, ";") {
		key, value, _ := strings.Cut(pair, "=")
		switch key {
		case "K8S_POD_NAMESPACE":
			namespace = value
		case "K8S_POD_NAME":
			name = value
		}
	}
	return namespace, name
}

var _ cnipb.CniServer = (*service)(nil)
