package ipam

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func TestQuarantine(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tests := []struct {
		name string
		run  func(q *quarantine)
		at   time.Time
		want []netip.Addr
	}{
		{name: "released addresses come back oldest first", at: t0.Add(2 * time.Second),
			run: func(q *quarantine) {
				q.add("p", addrs("10.0.0.5"), t0)
				q.add("p", addrs("10.0.0.3"), t0.Add(time.Second))
			},
			want: addrs("10.0.0.5", "10.0.0.3")},
		{name: "addresses older than the hold time are forgotten", at: t0.Add(90 * time.Second),
			run: func(q *quarantine) {
				q.add("p", addrs("10.0.0.5"), t0)
				q.add("p", addrs("10.0.0.3"), t0.Add(60*time.Second))
			},
			want: addrs("10.0.0.3")},
		{name: "an address released again moves to the back", at: t0.Add(3 * time.Second),
			run: func(q *quarantine) {
				q.add("p", addrs("10.0.0.5", "10.0.0.3"), t0)
				q.add("p", addrs("10.0.0.5"), t0.Add(time.Second))
			},
			want: addrs("10.0.0.3", "10.0.0.5")},
		{name: "pools are kept apart", at: t0,
			run:  func(q *quarantine) { q.add("other", addrs("10.0.0.5"), t0) },
			want: []netip.Addr{}},
		{name: "only the newest entries are kept past the size bound", at: t0.Add(time.Second),
			run: func(q *quarantine) {
				q.add("p", addrs("10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"), t0)
			},
			want: addrs("10.0.0.2", "10.0.0.3", "10.0.0.4")},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := newQuarantine(time.Minute, 3)
			tc.run(q)
			if got := q.recent("p", tc.at); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("recent = %v, want %v", got, tc.want)
			}
		})
	}
}
