package ippoolgc

import (
	"testing"
	"time"
)

func TestTracker(t *testing.T) {
	t0 := time.Unix(10_000, 0)
	a := Key{Pool: "p", IP: "10.0.0.2", UID: "a"}
	b := Key{Pool: "p", IP: "10.0.0.3", UID: "b"}
	type pass struct {
		at       time.Duration // since t0
		orphans  []Key
		wantDue  []Key
		wantNext time.Duration // since t0; -1 for none
	}
	tests := []struct {
		name   string
		grace  time.Duration
		passes []pass
	}{
		{
			name:  "an orphan just seen is not due before the grace period ends",
			grace: time.Minute,
			passes: []pass{
				{at: 0, orphans: []Key{a}, wantNext: time.Minute},
				{at: 59 * time.Second, orphans: []Key{a}, wantNext: time.Minute},
			},
		},
		{
			name:  "an orphan seen for the whole grace period is due",
			grace: time.Minute,
			passes: []pass{
				{at: 0, orphans: []Key{a}, wantNext: time.Minute},
				{at: time.Minute, orphans: []Key{a}, wantDue: []Key{a}, wantNext: -1},
			},
		},
		{
			name:  "an owner that came back in between restarts the grace period",
			grace: time.Minute,
			passes: []pass{
				{at: 0, orphans: []Key{a}, wantNext: time.Minute},
				{at: 30 * time.Second, orphans: nil, wantNext: -1},
				{at: 70 * time.Second, orphans: []Key{a}, wantNext: 130 * time.Second},
			},
		},
		{
			name:  "each orphan has its own clock and next is the earliest pending",
			grace: time.Minute,
			passes: []pass{
				{at: 0, orphans: []Key{a}, wantNext: time.Minute},
				{at: 20 * time.Second, orphans: []Key{a, b}, wantNext: time.Minute},
				{at: time.Minute, orphans: []Key{a, b}, wantDue: []Key{a}, wantNext: 80 * time.Second},
			},
		},
		{
			name:  "a zero grace period makes an orphan due at once",
			grace: 0,
			passes: []pass{
				{at: 0, orphans: []Key{a}, wantDue: []Key{a}, wantNext: -1},
			},
		},
		{
			name:  "a clock that went backwards restarts the grace period instead of releasing early",
			grace: time.Minute,
			passes: []pass{
				{at: time.Hour, orphans: []Key{a}, wantNext: time.Hour + time.Minute},
				{at: 0, orphans: []Key{a}, wantNext: time.Minute},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := NewTracker(tt.grace)
			for i, p := range tt.passes {
				due, next := tr.Observe(t0.Add(p.at), p.orphans)
				if len(due) != len(p.wantDue) {
					t.Fatalf("pass %d: due %v, want %v", i, due, p.wantDue)
				}
				for j := range due {
					if due[j] != p.wantDue[j] {
						t.Fatalf("pass %d: due %v, want %v", i, due, p.wantDue)
					}
				}
				wantNext := time.Time{}
				if p.wantNext >= 0 {
					wantNext = t0.Add(p.wantNext)
				}
				if !next.Equal(wantNext) {
					t.Fatalf("pass %d: next %v, want %v", i, next, wantNext)
				}
			}
		})
	}
}

func TestTrackerForgetRestartsTheClock(t *testing.T) {
	t0 := time.Unix(10_000, 0)
	a := Key{Pool: "p", IP: "10.0.0.2"}
	tr := NewTracker(time.Minute)
	tr.Observe(t0, []Key{a})
	tr.Forget(a)
	if due, _ := tr.Observe(t0.Add(time.Minute), []Key{a}); len(due) != 0 {
		t.Fatalf("due %v right after Forget, want none", due)
	}
	if tr.Pending() != 1 {
		t.Fatalf("pending %d, want 1", tr.Pending())
	}
}
