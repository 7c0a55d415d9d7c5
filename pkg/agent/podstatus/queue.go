package podstatus

import (
	"context"
	"fmt"
	"sync"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
)

// ReasonStatusFailed is the Warning Event of a Pod whose network-status could not be written.
const ReasonStatusFailed = "NetworkStatusFailed"

// statusWriteAttempts bounds the retries of one Pod's network-status write; with the queue's
// backoff they span about a minute.
const statusWriteAttempts = 12

// pendingStatus is the network-status a Pod should get.
type pendingStatus struct {
	pod  PodRef
	ours []nadv1.NetworkStatus
}

// statusQueue writes network-status annotations after the CNI answer has gone back: the runtime
// should not wait for two API round trips that change nothing on the Node. Writes for one Pod are
// serialized and coalesced (only the newest wanted value is written), and they are retried with
// backoff. The queue holds at most one entry per Pod of the Node.
type statusQueue struct {
	write func(ctx context.Context, pod PodRef, ours []nadv1.NetworkStatus) error
	warn  func(pod PodRef, reason, message string)
	queue workqueue.TypedRateLimitingInterface[string]

	workers sync.WaitGroup
	cancel  context.CancelFunc

	mu      sync.Mutex
	pending map[string]pendingStatus
}

// newStatusQueue returns a queue whose retries wait from baseDelay, doubling up to maxDelay.
func newStatusQueue(write func(context.Context, PodRef, []nadv1.NetworkStatus) error, warn func(PodRef, string, string),
	baseDelay, maxDelay time.Duration) *statusQueue {
	return &statusQueue{
		write: write,
		warn:  warn,
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](baseDelay, maxDelay),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "network-status"}),
		pending: map[string]pendingStatus{},
	}
}

func (q *statusQueue) add(pod PodRef, ours []nadv1.NetworkStatus) {
	key := pod.Namespace + "/" + pod.Name
	q.mu.Lock()
	q.pending[key] = pendingStatus{pod: pod, ours: ours}
	q.mu.Unlock()
	q.queue.Add(key)
}

// start runs workers, writing for different Pods at the same time, until stop.
func (q *statusQueue) start(workers int) {
	ctx, cancel := context.WithCancel(context.Background())
	q.cancel = cancel
	for range workers {
		q.workers.Go(func() {
			for q.next(ctx) {
			}
		})
	}
}

// stop lets the workers try every queued write once, for timeout at most, then stops them;
// writes still running are cancelled. It serves a graceful shutdown.
func (q *statusQueue) stop(timeout time.Duration) {
	drained := make(chan struct{})
	go func() {
		q.queue.ShutDownWithDrain()
		close(drained)
	}()
	select {
	case <-drained:
	case <-time.After(timeout):
		q.queue.ShutDown()
	}
	q.cancel()
	q.workers.Wait()
}

func (q *statusQueue) next(ctx context.Context) bool {
	key, quit := q.queue.Get()
	if quit {
		return false
	}
	defer q.queue.Done(key)
	q.mu.Lock()
	p, ok := q.pending[key]
	q.mu.Unlock()
	if !ok {
		q.queue.Forget(key)
		return true
	}
	err := q.write(ctx, p.pod, p.ours)
	q.mu.Lock()
	defer q.mu.Unlock()
	if latest, ok := q.pending[key]; ok && !samePending(latest, p) {
		// A newer value arrived while writing: it is queued already, and that write decides.
		q.queue.Forget(key)
		return true
	}
	if err == nil || ctx.Err() != nil {
		delete(q.pending, key)
		q.queue.Forget(key)
		return true
	}
	if q.queue.NumRequeues(key) < statusWriteAttempts-1 {
		klog.V(2).InfoS("Will retry writing network-status", "pod", klog.KRef(p.pod.Namespace, p.pod.Name), "err", err)
		q.queue.AddRateLimited(key)
		return true
	}
	delete(q.pending, key)
	q.queue.Forget(key)
	klog.ErrorS(err, "Gave up writing network-status", "pod", klog.KRef(p.pod.Namespace, p.pod.Name), "attempts", statusWriteAttempts)
	q.warn(p.pod, ReasonStatusFailed, fmt.Sprintf("the interfaces are attached, but %s could not be written after %d attempts: %v",
		nadv1.NetworkStatusAnnot, statusWriteAttempts, err))
	return true
}

// samePending tells whether two pending values are the same request (the same slice was queued).
func samePending(a, b pendingStatus) bool {
	if a.pod != b.pod || len(a.ours) != len(b.ours) {
		return false
	}
	return len(a.ours) == 0 || &a.ours[0] == &b.ours[0]
}

// QueueNetworkStatus has the Pod's network-status set to ours (entries of other writers kept) in
// the background, after the CNI answer; failures are retried and, in the end, reported as a
// Warning Event on the Pod.
func (r *Reporter) QueueNetworkStatus(pod PodRef, ours []nadv1.NetworkStatus) {
	r.statuses.add(pod, ours)
}

func (r *Reporter) warn(pod PodRef, reason, message string) {
	r.recorder.Event(pod.object(), corev1.EventTypeWarning, reason, message)
}
