package server

import (
	"context"

	"github.com/containernetworking/cni/pkg/types"
)

// CNI commands, as in CNI_COMMAND.
const (
	CommandAdd    = "ADD"
	CommandCheck  = "CHECK"
	CommandDel    = "DEL"
	CommandGC     = "GC"
	CommandStatus = "STATUS"
)

// Request is one CNI invocation as the container runtime made it, forwarded by the shim.
type Request struct {
	// Command is CNI_COMMAND (one of the Command constants); the server sets it from the method
	// called, so it is always the one the Handler method stands for.
	Command string
	// ContainerID is CNI_CONTAINERID (empty for GC and STATUS).
	ContainerID string
	// Netns is CNI_NETNS, a path; may be empty on DEL.
	Netns string
	// IfName is CNI_IFNAME.
	IfName string
	// Args is CNI_ARGS unparsed ("K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;...").
	Args string
	// Path is CNI_PATH.
	Path string
	// CNIVersion is the cniVersion of Config; the server encodes an ADD result in it.
	CNIVersion string
	// Config is the network configuration the runtime wrote to the shim's stdin, unchanged.
	Config []byte
}

// Handler carries out CNI commands for the agent. The server calls its methods concurrently, one
// goroutine per command; ctx is cancelled when the shim goes away (the runtime killed it).
//
// A returned error that is, or wraps, a *types.Error reaches the runtime with that error's code
// (use 7 for an invalid network configuration, 11 for "try again later", 50 from Status when ADD
// cannot be served); any other error becomes code 999, or 11 when it is a context deadline or
// cancellation, or 50 from Status. The package documentation lists every code.
type Handler interface {
	// Add attaches the container and returns its result, in any CNI version: the server converts
	// it to Request.CNIVersion.
	Add(ctx context.Context, req *Request) (types.Result, error)
	// Check verifies what Add made.
	Check(ctx context.Context, req *Request) error
	// Del detaches the container; it must succeed when there is nothing to remove.
	Del(ctx context.Context, req *Request) error
	// GC removes the attachments of this network missing from the config's
	// "cni.dev/valid-attachments".
	GC(ctx context.Context, req *Request) error
	// Status returns nil when the agent can serve Add.
	Status(ctx context.Context, req *Request) error
}
