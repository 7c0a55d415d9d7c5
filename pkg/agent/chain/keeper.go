package chain

import (
	"context"
	"path/filepath"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/cniinstall"
)

// Defaults of Options.
const (
	// DefaultResync is the period of the look that does not wait for inotify: it catches what a
	// lost or overflowed watch missed, and a directory that did not exist when watching began.
	DefaultResync = 30 * time.Second
	// DefaultSettle lets a burst of changes (a plugin writing its file in several steps) end before
	// the keeper looks, well within the promise of re-chaining within 2 seconds.
	DefaultSettle = 100 * time.Millisecond
)

// Metrics is what the keeper reports to after every look.
type Metrics interface {
	// CNIChainMissing: antrea should be chained and is not.
	CNIChainMissing(missing bool)
	// CNIChainProblem: the wanted state cannot be had (see Status.Problem).
	CNIChainProblem(problem bool)
	// CNIChainRestored is called each time the entry is put back into a primary that lost it.
	CNIChainRestored()
}

// Options configure a Keeper.
type Options struct {
	// ConfDir is the Node's CNI configuration directory, as the agent sees it.
	ConfDir string
	// CNISocket goes into the entry when not empty (an agent socket other than the default).
	CNISocket string
	// Want is whether antrea belongs in the chain, and why.
	Want Want
	// Resync and Settle default to DefaultResync and DefaultSettle.
	Resync, Settle time.Duration
	// Recorder and Node receive the Node Events; Recorder nil records none.
	Recorder record.EventRecorder
	Node     *corev1.ObjectReference
	// Metrics, when not nil, receives the state after every look.
	Metrics Metrics
}

// Keeper keeps the chain as wanted.
type Keeper struct {
	o Options

	mu   sync.Mutex // one look at a time; guards last
	last Status
}

// New returns a Keeper; Run starts it.
func New(o Options) *Keeper {
	if o.Resync <= 0 {
		o.Resync = DefaultResync
	}
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	return &Keeper{o: o}
}

func (k *Keeper) installOptions() cniinstall.Options {
	// No binary: the init container installs it; the keeper only edits the configuration.
	return cniinstall.Options{ConfDir: k.o.ConfDir, CNISocket: k.o.CNISocket}
}

// Sync looks at the directory once and brings it to the wanted state; it returns what it decided
// and the error of the action, if any.
func (k *Keeper) Sync() (Decision, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	s, err := cniinstall.Inspect(k.installOptions())
	if err != nil {
		d := Decision{Action: Nothing}
		st, ev := Failed(k.last, d, err)
		k.report(st, ev, false)
		return d, err
	}
	d := Decide(k.o.Want, k.o.ConfDir, s, k.last)
	switch d.Action {
	case Chain:
		_, err = cniinstall.Install(k.installOptions())
	case Unchain:
		_, err = cniinstall.Uninstall(k.installOptions())
	}
	if err != nil {
		st, ev := Failed(k.last, d, err)
		k.report(st, ev, false)
		return d, err
	}
	if d.Action != Nothing {
		klog.InfoS("CNI chain kept", "action", d.Action, "file", filepath.Join(k.o.ConfDir, d.Status.File), "restore", d.Restore)
	}
	k.report(d.Status, d.Event, d.Restore)
	return d, nil
}

func (k *Keeper) report(st Status, ev *Event, restored bool) {
	k.last = st
	if k.o.Metrics != nil {
		// Not chained by design (SecondaryNetwork off, a Multus primary) is not missing.
		k.o.Metrics.CNIChainMissing(k.o.Want.Chained && !st.Chained && st.Note == "")
		k.o.Metrics.CNIChainProblem(st.Problem != "")
		if restored {
			k.o.Metrics.CNIChainRestored()
		}
	}
	if ev == nil {
		return
	}
	if ev.Warning {
		klog.ErrorS(nil, "CNI chain: "+ev.Message, "reason", ev.Reason)
	} else {
		klog.InfoS("CNI chain: "+ev.Message, "reason", ev.Reason)
	}
	if k.o.Recorder != nil && k.o.Node != nil {
		t := corev1.EventTypeNormal
		if ev.Warning {
			t = corev1.EventTypeWarning
		}
		k.o.Recorder.Event(k.o.Node, t, ev.Reason, ev.Message)
	}
}

// Status returns what the last look reported.
func (k *Keeper) Status() Status {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.last
}

// Run keeps the chain until ctx ends: a look at once, then one after every change in the
// directory (once changes settle) and every Resync. It returns when ctx ends, and makes no change
// after it returned.
func (k *Keeper) Run(ctx context.Context) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		klog.ErrorS(err, "Cannot watch the CNI configuration directory; looking every resync period only",
			"dir", k.o.ConfDir, "resync", k.o.Resync)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	watching := false
	watch := func() {
		if w == nil || watching {
			return
		}
		if err := w.Add(k.o.ConfDir); err != nil {
			klog.V(2).InfoS("Cannot watch the CNI configuration directory yet", "dir", k.o.ConfDir, "err", err)
			return
		}
		watching = true
	}
	watch()
	_, _ = k.Sync()

	resync := time.NewTicker(k.o.Resync)
	defer resync.Stop()
	settle := time.NewTimer(k.o.Settle)
	settle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			if ev.Name == k.o.ConfDir && ev.Has(fsnotify.Remove|fsnotify.Rename) {
				watching = false // the directory itself went away; watch it again once it is back
			}
			if relevant(ev.Name) || ev.Name == k.o.ConfDir {
				settle.Reset(k.o.Settle)
			}
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			// An overflowed queue lost events: look now.
			klog.ErrorS(err, "Watching the CNI configuration directory", "dir", k.o.ConfDir)
			settle.Reset(k.o.Settle)
		case <-settle.C:
			if ctx.Err() == nil {
				_, _ = k.Sync()
			}
		case <-resync.C:
			watch()
			if ctx.Err() == nil {
				_, _ = k.Sync()
			}
		}
	}
}

// relevant reports whether a change to this path can change the chain: a file the runtime reads.
// The temporary files of atomic writes (ours and most plugins') are not, their rename is.
func relevant(path string) bool {
	switch filepath.Ext(path) {
	case ".conf", cniinstall.ListExt, ".json":
		return true
	}
	return false
}

// Uninstall takes antrea off the Node: out of every configuration list, and the plugin binary out
// of binDir (empty keeps it). Call it only once Run has returned, or the keeper could chain again.
func (k *Keeper) Uninstall(binDir string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	o := k.installOptions()
	o.BinDir = binDir
	res, err := cniinstall.Uninstall(o)
	if err != nil {
		return err
	}
	if res.ConfigChanged && k.o.Recorder != nil && k.o.Node != nil {
		k.o.Recorder.Event(k.o.Node, corev1.EventTypeNormal, ReasonUnchained,
			"antrea-agent is uninstalled: took antrea out of "+res.ConfigFile)
	}
	k.last = Status{}
	return nil
}
