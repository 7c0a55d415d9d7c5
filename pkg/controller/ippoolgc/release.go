package ippoolgc

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
)

// Conflict retries of one pool's release. Agents write the same status while they allocate; the
// backoff with jitter keeps the collector and many agents from colliding in lockstep.
const maxReleaseAttempts = 10

// releaseBackoff is the first and the longest pause between attempts (a variable for tests).
var releaseBackoff = struct{ base, max time.Duration }{20 * time.Millisecond, 2 * time.Second}

// releaseEntries removes the entries of keys from the pool's status. It starts from start (the
// cached copy), and after a conflict re-reads the pool from the API server. It returns the entries
// it removed; a pool that is gone has nothing left to release.
func releaseEntries(ctx context.Context, client versioned.Interface, start *v1beta1.IPPool, keys map[Key]bool) ([]v1beta1.IPAddressState, error) {
	pools := client.CrdV1beta1().IPPools()
	pool := start.DeepCopy()
	for attempt := 1; ; attempt++ {
		status, removed := WithoutEntries(pool, keys)
		if len(removed) == 0 {
			return nil, nil
		}
		pool.Status = status
		_, err := pools.UpdateStatus(ctx, pool, metav1.UpdateOptions{})
		switch {
		case err == nil:
			return removed, nil
		case apierrors.IsNotFound(err):
			return nil, nil
		case !apierrors.IsConflict(err):
			return nil, fmt.Errorf("update status of IPPool %s: %w", start.Name, err)
		case attempt >= maxReleaseAttempts:
			return nil, fmt.Errorf("update status of IPPool %s: still conflicting after %d attempts: %w", start.Name, attempt, err)
		}
		delay := min(releaseBackoff.base<<(attempt-1), releaseBackoff.max)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait.Jitter(delay, 1)):
		}
		pool, err = pools.Get(ctx, start.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("re-read IPPool %s after a conflict: %w", start.Name, err)
		}
	}
}
