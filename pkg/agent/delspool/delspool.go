// Package delspool runs the CNI DELs the `antrea` shim spooled while the agent could not take
// them (package cni/nodestate/spool). The agent drains the spool at start, as soon as it can
// execute DEL correctly, and then continuously: each entry goes through the agent's ordinary DEL
// handler, exactly as if the shim had forwarded it, and is removed only once that succeeded. A
// DEL that fails stays and is retried with a growing delay (up to MaxRetryDelay); an entry that
// cannot be decoded can never run and is removed with an error in the log.
package delspool

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/cni/nodestate"
	"github.com/podvlan/podvlan/pkg/cni/nodestate/spool"
	"github.com/podvlan/podvlan/pkg/cni/server"
)

const (
	// PollInterval is how often the spool directory is read. Reading an empty directory is cheap,
	// and one second keeps a returning agent well within its promise to release what a Pod
	// deleted in its absence held within 10 s.
	PollInterval = time.Second
	// MaxRetryDelay caps the delay between attempts of a DEL that keeps failing.
	MaxRetryDelay = time.Minute
	// DelTimeout bounds one spooled DEL, as the runtime bounds a forwarded one.
	DelTimeout = 2 * time.Minute
	// staleTemporary is the age after which a temporary file is an interrupted write.
	staleTemporary = 10 * time.Minute
)

// Deleter runs one DEL; the agent's CNI handler.
type Deleter interface {
	Del(ctx context.Context, req *server.Request) error
}

// Drainer drains one spool directory. Create it with New.
type Drainer struct {
	dir   string
	del   Deleter
	ready func() error
	now   func() time.Time
	// retry holds, per failing entry, when to try next and the current delay.
	retry map[string]backoff
	// onResult, when set, is told the outcome of each DEL run.
	onResult func(entry spool.Entry, took time.Duration, err error)
	// onDepth, when set, is told after each pass how many DELs wait in the spool.
	onDepth func(n int)
}

type backoff struct {
	next  time.Time
	delay time.Duration
}

// New returns a drainer of dir that runs DELs through del once ready returns nil (ready says
// whether a DEL executed now would really release what it names: caches synced, OVSDB
// connected).
func New(dir string, del Deleter, ready func() error) *Drainer {
	return &Drainer{dir: dir, del: del, ready: ready, now: time.Now, retry: map[string]backoff{}}
}

// OnResult registers f to be told the outcome of every spooled DEL run. Call it before Run.
func (d *Drainer) OnResult(f func(entry spool.Entry, took time.Duration, err error)) { d.onResult = f }

// OnDepth registers f to be told, after every pass, how many DELs wait in the spool: those left
// after the pass, or, while DEL cannot be served yet, every entry. Call it before Run.
func (d *Drainer) OnDepth(f func(n int)) { d.onDepth = f }

// Run drains the spool every PollInterval until ctx ends.
func (d *Drainer) Run(ctx context.Context) {
	ticker := time.NewTicker(PollInterval)
	defer ticker.Stop()
	for {
		d.Drain(ctx)
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// Drain runs every spooled DEL that is due, once, and returns how many are left. It does nothing
// (and returns -1) while ready says DEL cannot be served correctly yet.
func (d *Drainer) Drain(ctx context.Context) int {
	if err := d.ready(); err != nil {
		klog.V(4).InfoS("Not draining the DEL spool yet", "reason", err)
		if entries, bad, err := spool.List(d.dir); err == nil {
			d.depth(len(entries) + len(bad))
		}
		return -1
	}
	entries, bad, err := spool.List(d.dir)
	if err != nil {
		klog.ErrorS(err, "Cannot read the DEL spool", "dir", d.dir)
		return -1
	}
	for name, why := range bad {
		klog.ErrorS(why, "Removing a spooled DEL that cannot be decoded; reconciliation releases what it named")
		if err := spool.Remove(d.dir, name); err != nil {
			klog.ErrorS(err, "Cannot remove a spooled DEL", "entry", name)
		}
	}
	d.removeStaleTemporaries()
	present := make(map[string]bool, len(entries))
	left := 0
	for _, p := range entries {
		present[p.Name] = true
		if ctx.Err() != nil {
			return len(entries)
		}
		if b, failing := d.retry[p.Name]; failing && d.now().Before(b.next) {
			left++
			continue
		}
		if !d.run(ctx, p) {
			left++
		}
	}
	for name := range d.retry {
		if !present[name] {
			delete(d.retry, name) // removed by someone else
		}
	}
	d.depth(left)
	return left
}

func (d *Drainer) depth(n int) {
	if d.onDepth != nil {
		d.onDepth(n)
	}
}

// run executes one spooled DEL and removes it on success.
func (d *Drainer) run(ctx context.Context, p spool.Pending) bool {
	e := p.Entry
	// The shim recorded the cniVersion it read, so the handler's parse is the only one.
	req := &server.Request{Command: server.CommandDel, ContainerID: e.ContainerID, Netns: e.Netns, IfName: e.IfName,
		Args: e.Args, Path: e.Path, CNIVersion: e.CNIVersion, Config: e.Config}
	keys := []any{"container", e.ContainerID, "interface", e.IfName, "spooled", e.Spooled, "reason", e.Reason}
	delCtx, cancel := context.WithTimeout(ctx, DelTimeout)
	start := d.now()
	err := d.del.Del(delCtx, req)
	cancel()
	took := d.now().Sub(start)
	if d.onResult != nil {
		d.onResult(e, took, err)
	}
	if err != nil {
		b := d.retry[p.Name]
		b.delay = min(max(2*b.delay, PollInterval), MaxRetryDelay)
		b.next = d.now().Add(b.delay)
		d.retry[p.Name] = b
		klog.ErrorS(err, "Spooled DEL failed; retrying", append(keys, "retryIn", b.delay)...)
		return false
	}
	delete(d.retry, p.Name)
	if err := spool.Remove(d.dir, p.Name); err != nil {
		klog.ErrorS(err, "Spooled DEL done but its entry cannot be removed; it will run again (DEL is idempotent)", keys...)
		return false
	}
	klog.InfoS("Ran a DEL spooled while the agent was away", append(keys, "took", took)...)
	return true
}

// removeStaleTemporaries deletes the temporary files of writes interrupted long ago (a shim
// killed mid-write).
func (d *Drainer) removeStaleTemporaries() {
	list, err := os.ReadDir(d.dir)
	if err != nil {
		return
	}
	for _, e := range list {
		if !nodestate.IsTemporary(e.Name()) {
			continue
		}
		if info, err := e.Info(); err == nil && d.now().Sub(info.ModTime()) > staleTemporary {
			_ = os.Remove(filepath.Join(d.dir, e.Name()))
		}
	}
}
