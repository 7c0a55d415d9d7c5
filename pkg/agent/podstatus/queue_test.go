package podstatus

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
)

// recordingWriter records the writes a statusQueue makes and fails the first failures of them.
type recordingWriter struct {
	mu       sync.Mutex
	failures int
	written  map[string][]string // Pod name -> the first interface of each successful write
	calls    int
	warnings []string
	block    chan struct{} // when set, the first write waits for it
}

func (w *recordingWriter) write(_ context.Context, pod PodRef, ours []nadv1.NetworkStatus) error {
	w.mu.Lock()
	block := w.block
	w.block = nil
	w.mu.Unlock()
	if block != nil {
		<-block
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls++
	if w.failures > 0 {
		w.failures--
		return errors.New("conflict")
	}
	if w.written == nil {
		w.written = map[string][]string{}
	}
	w.written[pod.Name] = append(w.written[pod.Name], ours[0].Interface)
	return nil
}

func (w *recordingWriter) warn(pod PodRef, reason, message string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.warnings = append(w.warnings, pod.Name+" "+reason)
}

// waitFor polls cond for a few seconds.
func (w *recordingWriter) waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.mu.Lock()
		ok := cond()
		w.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func status(ifName string) []nadv1.NetworkStatus {
	return []nadv1.NetworkStatus{{Name: "ns/net", Interface: ifName}}
}

func TestStatusQueueRetriesAndWritesEveryPod(t *testing.T) {
	w := &recordingWriter{failures: 3}
	q := newStatusQueue(w.write, w.warn, time.Millisecond, 5*time.Millisecond)
	q.start(2)
	q.add(PodRef{Namespace: "ns", Name: "a"}, status("eth1"))
	q.add(PodRef{Namespace: "ns", Name: "b"}, status("eth2"))
	w.waitFor(t, func() bool { return len(w.written) == 2 })
	q.stop(10 * time.Second)
	if got := w.written["a"]; len(got) != 1 || got[0] != "eth1" {
		t.Errorf("writes for a = %v, want [eth1]", got)
	}
	if got := w.written["b"]; len(got) != 1 || got[0] != "eth2" {
		t.Errorf("writes for b = %v, want [eth2]", got)
	}
	if w.calls != 5 {
		t.Errorf("%d writes, want 5 (3 failed, 2 succeeded)", w.calls)
	}
	if len(w.warnings) != 0 {
		t.Errorf("warnings %v, want none", w.warnings)
	}
}

func TestStatusQueueWritesTheNewestValueLast(t *testing.T) {
	release := make(chan struct{})
	w := &recordingWriter{block: release}
	q := newStatusQueue(w.write, w.warn, time.Millisecond, 5*time.Millisecond)
	q.start(2)
	pod := PodRef{Namespace: "ns", Name: "a"}
	q.add(pod, status("old"))
	time.Sleep(50 * time.Millisecond) // the first write is under way, blocked
	q.add(pod, status("mid"))
	q.add(pod, status("new"))
	close(release)
	w.waitFor(t, func() bool { got := w.written["a"]; return len(got) > 0 && got[len(got)-1] == "new" })
	q.stop(10 * time.Second)
	got := w.written["a"]
	for _, v := range got {
		if v == "mid" {
			t.Errorf("writes for a = %v: the superseded value was written", got)
		}
	}
}

func TestStatusQueueGivesUpWithAWarning(t *testing.T) {
	w := &recordingWriter{failures: 1000}
	q := newStatusQueue(w.write, w.warn, time.Millisecond, 5*time.Millisecond)
	q.start(1)
	q.add(PodRef{Namespace: "ns", Name: "a"}, status("eth1"))
	w.waitFor(t, func() bool { return len(w.warnings) > 0 })
	q.stop(time.Second)
	if w.calls != statusWriteAttempts {
		t.Errorf("%d attempts, want %d", w.calls, statusWriteAttempts)
	}
	if len(w.warnings) != 1 || w.warnings[0] != "a "+ReasonStatusFailed {
		t.Errorf("warnings %v, want one %s for a", w.warnings, ReasonStatusFailed)
	}
}
