package e2e

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/ipam"
)

func heldBy(ip, container string) ipam.Held {
	return ipam.Held{IPAddressState: v1beta1.IPAddressState{IPAddress: ip,
		Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Namespace: "ns", Name: "p", ContainerID: container, IFName: "eth1"}}},
		Block: "pool.10-0-0-0-28", Node: "node-1"}
}

// reads replays results, the last one forever, and counts the calls.
type reads struct {
	results [][]ipam.Held
	calls   int
}

func (r *reads) read() ([]ipam.Held, error) {
	i := min(r.calls, len(r.results)-1)
	r.calls++
	return r.results[i], nil
}

func TestPollHoldersWaitsForHoldersReportedLate(t *testing.T) {
	r := &reads{results: [][]ipam.Held{nil, nil, {heldBy("10.0.0.2", "c1")}}}
	held, err := pollHolders(r.read, holdCount(1), time.Second, 0, time.Millisecond)
	if err != nil || len(held) != 1 || r.calls != 3 {
		t.Fatalf("pollHolders() = %v, %v after %d reads; want the third read's holder", held, err, r.calls)
	}
}

func TestPollHoldersDoesNotAcceptAnAbsenceThatEndsWithinTheSettleTime(t *testing.T) {
	// The leaked address is reported after two empty reads: an absence check must see it.
	r := &reads{results: [][]ipam.Held{nil, nil, {heldBy("10.0.0.2", "c1")}}}
	_, err := pollHolders(r.read, holdNone(), 20*time.Millisecond, time.Hour, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "holds 1 addresses, want 0: 10.0.0.2 (Pod ns/p, container c1, eth1) in block pool.10-0-0-0-28 of node-1") {
		t.Fatalf("pollHolders() error = %v, want the late holder named", err)
	}
}

func TestPollHoldersReturnsReadErrorsAtTheDeadline(t *testing.T) {
	_, err := pollHolders(func() ([]ipam.Held, error) { return nil, errors.New("get IPPool p: boom") },
		holdNone(), 5*time.Millisecond, 0, time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "get IPPool p: boom") {
		t.Fatalf("pollHolders() error = %v, want the read error", err)
	}
}

func TestHoldCountOfCountsOnlyMatchingHolders(t *testing.T) {
	held := []ipam.Held{heldBy("10.0.0.2", "c1"), heldBy("10.0.0.3", "c2"), {IPAddressState: v1beta1.IPAddressState{IPAddress: "10.0.0.4"}}}
	if err := holdCountOf(1, "container c1", ofContainer("c1"))(held); err != nil {
		t.Errorf("one holder of c1: %v", err)
	}
	err := holdCountOf(0, "container c2", ofContainer("c2"))(held)
	if err == nil || !strings.Contains(err.Error(), "holds 1 addresses of container c2, want 0: 10.0.0.3") {
		t.Errorf("no holder of c2: error = %v", err)
	}
	if err := holdCountOf(2, "ns/p", ofPod("ns", "p"))(held); err != nil {
		t.Errorf("two holders of ns/p: %v", err)
	}
}
