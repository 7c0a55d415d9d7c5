package ipam

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// poolWorker serializes this Allocator's writes to one pool and coalesces them: operations queue
// while a write is in flight and the next write carries all of them. A goroutine runs only while
// there is work.
//
// Contention with other writers (other agents) is handled like a shared medium: every conflict
// doubles a contention window, every success halves it. While the window is open the worker waits
// a random part of it before each write, also after a success (so that a writer that just won
// does not win again and again while the others re-read the pool), and reads the pool from the API
// server right before writing instead of planning on a cached copy that is likely stale. A
// conflicting write costs the API server nearly as much as a successful one; fewer of them leave
// more of its capacity for writes that succeed, and the waits let more requests join each write.
type poolWorker struct {
	pool string
	a    *Allocator

	mu      sync.Mutex
	queue   []*pendingOp
	running bool
	latest  *v1beta1.IPPool // the newest copy this Allocator wrote or read from the API server

	window time.Duration // contention window; used only by the goroutine running the worker
}

type pendingOp struct {
	op       poolOp
	ctx      context.Context
	deadline time.Time
	done     chan opOutcome // buffered: the worker never blocks on it
}

// do queues an operation and waits for its outcome. The worker answers every operation: on
// success, on a permanent error, or once the operation's deadline has passed.
func (w *poolWorker) do(ctx context.Context, op poolOp) opOutcome {
	p := &pendingOp{op: op, ctx: ctx, deadline: time.Now().Add(w.a.opts.Timeout), done: make(chan opOutcome, 1)}
	if d, ok := ctx.Deadline(); ok && d.Before(p.deadline) {
		p.deadline = d
	}
	w.mu.Lock()
	w.queue = append(w.queue, p)
	if !w.running {
		w.running = true
		go w.run()
	}
	w.mu.Unlock()
	return <-p.done
}

func (w *poolWorker) run() {
	for {
		if w.window > 0 && w.hasQueued() {
			// Others are writing this pool too: give them a turn, and let more requests queue.
			time.Sleep(rand.N(w.window))
		}
		batch := w.take()
		if batch == nil {
			return
		}
		w.process(batch)
	}
}

func (w *poolWorker) hasQueued() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue) > 0
}

// widen records a conflict in the contention window and waits a random part of it.
func (w *poolWorker) widen() {
	o := w.a.opts
	w.window = min(max(2*w.window, o.RetryBackoff), o.MaxRetryBackoff)
	time.Sleep(rand.N(w.window))
}

// narrow records a successful write in the contention window.
func (w *poolWorker) narrow() {
	if w.window = w.window * 3 / 4; w.window < w.a.opts.RetryBackoff {
		w.window = 0
	}
}

// take removes and returns the queued operations, or marks the worker idle when there are none.
func (w *poolWorker) take() []*pendingOp {
	w.mu.Lock()
	defer w.mu.Unlock()
	batch := w.queue
	w.queue = nil
	if len(batch) == 0 {
		w.running = false
		return nil
	}
	return batch
}

func (w *poolWorker) setLatest(p *v1beta1.IPPool) {
	w.mu.Lock()
	w.latest = newer(w.latest, p)
	w.mu.Unlock()
}

func (w *poolWorker) getLatest() *v1beta1.IPPool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.latest
}

// process writes one batch: plan against the freshest copy known, write with its resourceVersion,
// and on conflict re-read the pool from the API server and plan again, until every operation is
// answered. Operations queued meanwhile join the batch at each retry.
func (w *poolWorker) process(batch []*pendingOp) {
	var pool *v1beta1.IPPool
	var err error
	verified := w.window > 0 // pool comes from the API server, not from a cache
	if verified {
		pool, err = w.reread(batch)
	} else {
		ctx, cancel := context.WithDeadline(context.Background(), latestDeadline(batch))
		pool, err = w.a.currentPool(ctx, w.pool)
		cancel()
	}
	attempts := 0
	var lastErr error
	for {
		batch = w.dropExpired(batch, attempts, lastErr)
		if len(batch) == 0 {
			return
		}
		if err == nil {
			var next step
			next, err = w.attempt(batch, pool, verified)
			switch next {
			case answered:
				return
			case confirm:
				pool, err = w.reread(batch)
				verified = true
				continue
			}
		}
		var notFound *PoolNotFoundError
		switch {
		case errors.As(err, &notFound) || permanent(err):
			answerAll(batch, opOutcome{err: err})
			return
		case apierrors.IsConflict(err):
			w.a.conflicts.Add(1)
			klog.V(4).InfoS("IPPool status write conflicted, re-reading the pool", "ippool", w.pool, "attempt", attempts+1, "batch", len(batch))
		default:
			klog.V(2).InfoS("IPPool status write failed, retrying", "ippool", w.pool, "attempt", attempts+1, "err", err)
		}
		attempts++
		lastErr = err
		w.widen()
		// Requests that arrived meanwhile ride along with the retry.
		batch = append(batch, w.takeQueued()...)
		pool, err = w.reread(batch)
		verified = true
	}
}

// step is what process does after an attempt.
type step int

const (
	retry    step = iota // the write failed with the returned error
	answered             // every operation of the batch has its outcome
	confirm              // nothing to write according to a cached copy: re-read and plan again
)

// attempt plans the batch on one copy of the pool and writes the result.
func (w *poolWorker) attempt(batch []*pendingOp, pool *v1beta1.IPPool, verified bool) (step, error) {
	a := w.a
	space, err := a.space(pool)
	if err != nil {
		answerAll(batch, opOutcome{err: err})
		return answered, nil
	}
	ops := make([]poolOp, len(batch))
	for i, p := range batch {
		ops[i] = p.op
	}
	plan := planBatch(pool, space, ops, a.quarantine.recent(w.pool, time.Now()))
	if !plan.changed {
		if !verified && acquires(ops) {
			// The cache says the owners already hold their addresses: a cached copy may predate a
			// release, so confirm with the API server before answering.
			return confirm, nil
		}
		w.answer(batch, plan)
		return answered, nil
	}
	updated := &v1beta1.IPPool{TypeMeta: pool.TypeMeta, ObjectMeta: *pool.ObjectMeta.DeepCopy(), Spec: pool.Spec,
		Status: plan.status}
	ctx, cancel := context.WithDeadline(context.Background(), latestDeadline(batch))
	defer cancel()
	written, err := a.client.CrdV1beta1().IPPools().UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return retry, &PoolNotFoundError{Pool: w.pool}
	}
	if err != nil {
		return retry, err
	}
	a.writes.Add(1)
	w.narrow()
	w.setLatest(written)
	a.quarantine.add(w.pool, plan.released, time.Now())
	w.answer(batch, plan)
	return answered, nil
}

// reread reads the pool from the API server, never from a cache.
func (w *poolWorker) reread(batch []*pendingOp) (*v1beta1.IPPool, error) {
	ctx, cancel := context.WithDeadline(context.Background(), latestDeadline(batch))
	defer cancel()
	pool, err := w.a.readPool(ctx, w.pool)
	if err == nil {
		w.setLatest(pool)
	}
	return pool, err
}

// acquires reports whether any operation allocates or claims an address.
func acquires(ops []poolOp) bool {
	for _, op := range ops {
		if op.kind != opRelease {
			return true
		}
	}
	return false
}

// takeQueued removes the queued operations without marking the worker idle.
func (w *poolWorker) takeQueued() []*pendingOp {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// dropExpired answers the operations whose caller gave up or whose deadline passed.
func (w *poolWorker) dropExpired(batch []*pendingOp, attempts int, lastErr error) []*pendingOp {
	now := time.Now()
	kept := batch[:0]
	for _, p := range batch {
		err := p.ctx.Err()
		if err == nil && !now.Before(p.deadline) {
			err = context.DeadlineExceeded
		}
		switch {
		case err == nil:
			kept = append(kept, p)
		case attempts > 0:
			if lastErr == nil {
				lastErr = err
			}
			p.done <- opOutcome{err: &WriteConflictError{Pool: w.pool, Attempts: attempts, Err: errors.Join(err, lastErr)}}
		default:
			p.done <- opOutcome{err: err}
		}
	}
	return kept
}

func (w *poolWorker) answer(batch []*pendingOp, plan batchPlan) {
	w.a.operations.Add(uint64(len(batch)))
	for i, p := range batch {
		p.done <- plan.outcomes[i]
	}
}

func answerAll(batch []*pendingOp, out opOutcome) {
	for _, p := range batch {
		p.done <- out
	}
}

func latestDeadline(batch []*pendingOp) time.Time {
	d := batch[0].deadline
	for _, p := range batch[1:] {
		if p.deadline.After(d) {
			d = p.deadline
		}
	}
	return d
}

// permanent reports errors that retrying cannot fix.
func permanent(err error) bool {
	return apierrors.IsInvalid(err) || apierrors.IsForbidden(err) || apierrors.IsUnauthorized(err) ||
		apierrors.IsBadRequest(err) || apierrors.IsMethodNotSupported(err) || apierrors.IsRequestEntityTooLargeError(err)
}
