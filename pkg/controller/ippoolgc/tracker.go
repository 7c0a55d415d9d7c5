package ippoolgc

import "time"

// Tracker remembers since when each orphan has been seen orphaned, and says which ones have been
// orphaned for the whole grace period.
type Tracker struct {
	grace     time.Duration
	firstSeen map[Key]time.Time
}

// NewTracker returns a tracker with the given grace period; 0 makes every orphan due at once.
func NewTracker(grace time.Duration) *Tracker {
	return &Tracker{grace: grace, firstSeen: map[Key]time.Time{}}
}

// Observe records the orphans found by one complete pass at now. Orphans tracked before but not in
// this pass are forgotten (their owner came back, or the entry is gone), so a release needs the
// grace period of uninterrupted orphanhood. It returns the orphans whose grace period has ended and,
// when others are still waiting, the earliest time one of them will be due (zero otherwise).
func (t *Tracker) Observe(now time.Time, orphans []Key) (due []Key, next time.Time) {
	current := make(map[Key]time.Time, len(orphans))
	for _, k := range orphans {
		first, ok := t.firstSeen[k]
		if !ok || first.After(now) {
			first = now
		}
		current[k] = first
		if dueAt := first.Add(t.grace); !now.Before(dueAt) {
			due = append(due, k)
		} else if next.IsZero() || dueAt.Before(next) {
			next = dueAt
		}
	}
	t.firstSeen = current
	return due, next
}

// Forget drops k, after its release or when a live read showed its owner is there after all.
func (t *Tracker) Forget(k Key) { delete(t.firstSeen, k) }

// Pending is the number of orphans being tracked.
func (t *Tracker) Pending() int { return len(t.firstSeen) }
