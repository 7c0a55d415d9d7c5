package podnetworks

import (
	"context"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/cni/server"
)

// ADDs knows which sandboxes have a CNI ADD in progress in this agent. The shim records a
// sandbox before it forwards the ADD, so a record alone does not say that the ADD is over; this
// does, for every ADD that reaches the agent. An ADD the shim answers alone (a Pod that asks for
// nothing) never reaches it, and is over a moment after its record is written: SettleTime covers
// that moment.
type ADDs struct {
	mu       sync.Mutex
	inFlight map[string]int
}

// SettleTime is how old a sandbox record must be before the controller trusts that an ADD the
// agent has not seen (answered by the shim alone, or not arrived yet) is over.
const SettleTime = time.Second

// NewADDs returns an empty tracker.
func NewADDs() *ADDs { return &ADDs{inFlight: map[string]int{}} }

// Busy reports whether an ADD for the container is being served.
func (t *ADDs) Busy(containerID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.inFlight[containerID] > 0
}

func (t *ADDs) begin(containerID string) func() {
	t.mu.Lock()
	t.inFlight[containerID]++
	t.mu.Unlock()
	return func() {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.inFlight[containerID]--; t.inFlight[containerID] <= 0 {
			delete(t.inFlight, containerID)
		}
	}
}

// Wrap returns h with its ADDs tracked.
func (t *ADDs) Wrap(h server.Handler) server.Handler { return &trackedHandler{Handler: h, adds: t} }

type trackedHandler struct {
	server.Handler
	adds *ADDs
}

func (h *trackedHandler) Add(ctx context.Context, req *server.Request) (types.Result, error) {
	defer h.adds.begin(req.ContainerID)()
	return h.Handler.Add(ctx, req)
}
