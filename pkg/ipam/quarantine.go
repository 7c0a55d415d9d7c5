package ipam

import (
	"net/netip"
	"sync"
	"time"
)

// quarantine remembers, per pool, the addresses released recently, so that they are handed out
// again only when nothing else is free: peers may still hold the old owner's MAC address for them
// in their ARP and neighbour caches.
type quarantine struct {
	hold time.Duration
	max  int // entries kept per pool; the oldest go first

	mu    sync.Mutex
	pools map[string][]released // oldest first
}

type released struct {
	addr netip.Addr
	at   time.Time
}

func newQuarantine(hold time.Duration, max int) *quarantine {
	return &quarantine{hold: hold, max: max, pools: map[string][]released{}}
}

// add records addresses of a pool as released at the given time.
func (q *quarantine) add(pool string, addrs []netip.Addr, at time.Time) {
	if len(addrs) == 0 || q.hold <= 0 {
		return
	}
	fresh := make(map[netip.Addr]struct{}, len(addrs))
	for _, a := range addrs {
		fresh[a] = struct{}{}
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.pools[pool]
	kept := list[:0]
	for _, r := range list {
		if _, again := fresh[r.addr]; !again && at.Sub(r.at) < q.hold {
			kept = append(kept, r)
		}
	}
	for _, a := range addrs {
		kept = append(kept, released{addr: a, at: at})
	}
	if over := len(kept) - q.max; over > 0 {
		kept = append(kept[:0], kept[over:]...)
	}
	if len(kept) == 0 {
		delete(q.pools, pool)
		return
	}
	q.pools[pool] = kept
}

// recent returns the addresses of a pool released less than the hold time ago, oldest first.
func (q *quarantine) recent(pool string, now time.Time) []netip.Addr {
	q.mu.Lock()
	defer q.mu.Unlock()
	list := q.pools[pool]
	out := make([]netip.Addr, 0, len(list))
	for _, r := range list {
		if now.Sub(r.at) < q.hold {
			out = append(out, r.addr)
		}
	}
	return out
}
