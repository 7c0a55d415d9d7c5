package podnetworks

import (
	"context"
	"sync"
	"time"

	"github.com/containernetworking/cni/pkg/types"

	"github.com/podvlan/podvlan/pkg/cni/server"
)

// ADDs knows which sandboxes have a CNI ADD in progress in this agent, and which had their ADD
// fail. The shim records a sandbox before it forwards the ADD, so a record alone does not say
// that the ADD is over, nor that it succeeded; this does, for every ADD that reaches the agent.
// A sandbox whose ADD failed never runs (the runtime tears it down and sends a DEL), so the
// controller must not attach it; the shim removes that record once it has the answer, and this
// covers the moment before, and a shim killed before it could. An ADD the shim answers alone (a
// Pod that asks for nothing) never reaches the agent, and is over a moment after its record is
// written: SettleTime covers that moment.
type ADDs struct {
	mu       sync.Mutex
	now      func() time.Time
	inFlight map[string]int
	failed   map[string]time.Time
}

// SettleTime is how old a sandbox record must be before the controller trusts that an ADD the
// agent has not seen (answered by the shim alone, or not arrived yet) is over.
const SettleTime = time.Second

// FailedMemory is how long a failed ADD is remembered when no DEL comes for its sandbox: long
// after any runtime has torn the sandbox down, and a bound on the memory it takes.
const FailedMemory = 10 * time.Minute

// NewADDs returns an empty tracker.
func NewADDs() *ADDs {
	return &ADDs{now: time.Now, inFlight: map[string]int{}, failed: map[string]time.Time{}}
}

// Busy reports whether an ADD for the container is being served, or failed and its sandbox
// has not been deleted yet: either way the controller must leave the sandbox alone.
func (t *ADDs) Busy(containerID string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.inFlight[containerID] > 0 {
		return true
	}
	at, failed := t.failed[containerID]
	return failed && t.now().Sub(at) < FailedMemory
}

func (t *ADDs) begin(containerID string) func(err error) {
	t.mu.Lock()
	t.inFlight[containerID]++
	t.mu.Unlock()
	return func(err error) {
		t.mu.Lock()
		defer t.mu.Unlock()
		if t.inFlight[containerID]--; t.inFlight[containerID] <= 0 {
			delete(t.inFlight, containerID)
		}
		now := t.now()
		for id, at := range t.failed {
			if now.Sub(at) >= FailedMemory {
				delete(t.failed, id)
			}
		}
		if err != nil {
			t.failed[containerID] = now
		} else {
			delete(t.failed, containerID) // a retried ADD of the same sandbox that succeeded
		}
	}
}

func (t *ADDs) deleted(containerID string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.failed, containerID)
}

// Wrap returns h with its ADDs tracked.
func (t *ADDs) Wrap(h server.Handler) server.Handler { return &trackedHandler{Handler: h, adds: t} }

type trackedHandler struct {
	server.Handler
	adds *ADDs
}

func (h *trackedHandler) Add(ctx context.Context, req *server.Request) (res types.Result, err error) {
	end := h.adds.begin(req.ContainerID)
	defer func() { end(err) }()
	return h.Handler.Add(ctx, req)
}

func (h *trackedHandler) Del(ctx context.Context, req *server.Request) error {
	err := h.Handler.Del(ctx, req)
	if err == nil {
		h.adds.deleted(req.ContainerID)
	}
	return err
}
