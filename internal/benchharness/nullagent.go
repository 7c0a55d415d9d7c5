package benchharness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"

	"github.com/podvlan/podvlan/pkg/cni/server"
)

// NullAgent serves the CNI socket the way antrea-agent does (the same gRPC server) but does no
// work: every command succeeds at once. Timing the shim against it gives what any exec'd CNI
// plugin that talks to a local daemon costs here, which no agent can undercut.
type NullAgent struct {
	Socket string
	srv    *server.Server
	dir    string
}

// StartNullAgent serves a socket in a directory of its own.
func StartNullAgent() (*NullAgent, error) {
	dir, err := os.MkdirTemp("", "pvbench-null-")
	if err != nil {
		return nil, err
	}
	n := &NullAgent{Socket: filepath.Join(dir, "cni.sock"), dir: dir}
	n.srv = server.New(n.Socket, nullHandler{})
	if err := n.srv.Start(); err != nil {
		_ = os.RemoveAll(dir)
		return nil, fmt.Errorf("null agent: %w", err)
	}
	return n, nil
}

// Stop stops serving and removes the socket's directory.
func (n *NullAgent) Stop() {
	n.srv.Stop(context.Background())
	_ = os.RemoveAll(n.dir)
}

type nullHandler struct{}

func (nullHandler) Add(context.Context, *server.Request) (types.Result, error) {
	return &current.Result{CNIVersion: current.ImplementedSpecVersion}, nil
}
func (nullHandler) Check(context.Context, *server.Request) error  { return nil }
func (nullHandler) Del(context.Context, *server.Request) error    { return nil }
func (nullHandler) GC(context.Context, *server.Request) error     { return nil }
func (nullHandler) Status(context.Context, *server.Request) error { return nil }
