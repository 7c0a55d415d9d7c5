package e2e

// Reading who holds a pool's addresses. An agent with address blocks records a holder on its Node
// first and copies it into the IPPoolBlock's status about a second later (ipam's BlockSyncDelay),
// so what the API server shows right after an ADD or a DEL may still be the state before it: a
// test waits for the holders it expects instead of reading them once.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/ipam"
)

const (
	// holdersTimeout bounds the wait for a pool's holders to become what a test expects.
	holdersTimeout = 20 * time.Second
	// holdersSettle is how long they must then stay so. It exceeds the agent's sync delay (1 s)
	// plus a write, so that a holder the agent has yet to report (say, an address a failed ADD
	// leaked) shows up before a test accepts its absence.
	holdersSettle = 2500 * time.Millisecond
	// holdersPoll is the interval between two reads.
	holdersPoll = 250 * time.Millisecond
)

// readPoolHolders reads the holders of pool once: its status entries and its blocks' holders.
func (c *testCluster) readPoolHolders(t *testing.T, pool string) ([]ipam.Held, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), apiCallTimeout)
	defer cancel()
	_, held, err := ipam.ReadPoolHolders(ctx, c.crdClient(t), pool)
	return held, err
}

// poolAllocations reads the holders of pool once, failing the test when it cannot. Use it inside
// a loop that polls anyway (eventually); elsewhere use waitPoolHolders.
func (c *testCluster) poolAllocations(t *testing.T, pool string) []ipam.Held {
	t.Helper()
	held, err := c.readPoolHolders(t, pool)
	if err != nil {
		t.Fatal(err)
	}
	return held
}

// waitPoolHolders waits until check accepts the holders of pool and has kept accepting them for
// holdersSettle, and returns them. When that does not happen within holdersTimeout it marks the
// test failed (t.Errorf) with check's last complaint, which names the pool and the addresses, and
// returns the last holders read.
func (c *testCluster) waitPoolHolders(t *testing.T, pool string, check func([]ipam.Held) error) []ipam.Held {
	t.Helper()
	held, err := pollHolders(func() ([]ipam.Held, error) { return c.readPoolHolders(t, pool) }, check,
		holdersTimeout, holdersSettle, holdersPoll)
	if err != nil {
		t.Errorf("IPPool %s: %v", pool, err)
	}
	return held
}

// pollHolders calls read every poll until check has accepted every result for settle, and returns
// the last one. It gives up with check's (or read's) last error when check does not accept at
// timeout; accepted then, it still waits out settle.
func pollHolders(read func() ([]ipam.Held, error), check func([]ipam.Held) error, timeout, settle, poll time.Duration) ([]ipam.Held, error) {
	deadline := time.Now().Add(timeout)
	var since time.Time // when check started accepting, zero while it does not
	for {
		held, err := read()
		if err == nil {
			err = check(held)
		}
		now := time.Now()
		switch {
		case err != nil:
			since = time.Time{}
		case since.IsZero():
			since = now
		}
		if err == nil && now.Sub(since) >= settle {
			return held, nil
		}
		if err != nil && now.After(deadline) {
			return held, fmt.Errorf("%w (waited %s)", err, timeout)
		}
		time.Sleep(poll)
	}
}

// holdCount accepts exactly n holders.
func holdCount(n int) func([]ipam.Held) error {
	return func(held []ipam.Held) error {
		if len(held) != n {
			return fmt.Errorf("holds %d addresses, want %d: %s", len(held), n, describeHolders(held))
		}
		return nil
	}
}

// holdNone accepts no holders.
func holdNone() func([]ipam.Held) error { return holdCount(0) }

// holdCountOf accepts exactly n holders that match (what names them in the complaint).
func holdCountOf(n int, what string, match func(ipam.Held) bool) func([]ipam.Held) error {
	return func(held []ipam.Held) error {
		var mine []ipam.Held
		for _, h := range held {
			if match(h) {
				mine = append(mine, h)
			}
		}
		if len(mine) != n {
			return fmt.Errorf("holds %d addresses of %s, want %d: %s", len(mine), what, n, describeHolders(mine))
		}
		return nil
	}
}

// holdAll accepts what every check accepts.
func holdAll(checks ...func([]ipam.Held) error) func([]ipam.Held) error {
	return func(held []ipam.Held) error {
		for _, check := range checks {
			if err := check(held); err != nil {
				return err
			}
		}
		return nil
	}
}

// addressesOf returns the addresses of the holders that match.
func addressesOf(held []ipam.Held, match func(ipam.Held) bool) []string {
	var out []string
	for _, h := range held {
		if match(h) {
			out = append(out, h.IPAddress)
		}
	}
	return out
}

// ofContainer matches the holders of one sandbox.
func ofContainer(id string) func(ipam.Held) bool {
	return func(h ipam.Held) bool { return h.Owner.Pod != nil && h.Owner.Pod.ContainerID == id }
}

// ofPod matches the holders of Pod namespace/name.
func ofPod(namespace, name string) func(ipam.Held) bool {
	return func(h ipam.Held) bool {
		return h.Owner.Pod != nil && h.Owner.Pod.Namespace == namespace && h.Owner.Pod.Name == name
	}
}

// describeHolders renders holders for failure messages: address, owner, and where it is recorded.
func describeHolders(held []ipam.Held) string {
	if len(held) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(held))
	for _, h := range held {
		s := h.IPAddress
		if p := h.Owner.Pod; p != nil {
			s += fmt.Sprintf(" (Pod %s/%s, container %.12s, %s)", p.Namespace, p.Name, p.ContainerID, p.IFName)
		}
		switch {
		case h.Block == "":
			s += " in status.ipAddresses"
		case h.Node == "":
			s += " in shared block " + h.Block
		default:
			s += " in block " + h.Block + " of " + h.Node
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
