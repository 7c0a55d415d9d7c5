// Package bridge keeps the secondary OVS bridge and its uplinks as configured, for as long as the
// agent runs: at start, after every OVSDB reconnection, and periodically while an uplink is
// missing. A missing uplink degrades the secondary network (Node Event, state observer, retry)
// instead of stopping the agent.
package bridge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/ovs"
)

// Event reasons on the Node, documented in docs/troubleshooting.md.
const (
	ReasonBridgeFailed  = "SecondaryBridgeFailed"
	ReasonUplinkMissing = "SecondaryUplinkMissing"
	ReasonUplinkRefused = "SecondaryUplinkRefused"
	ReasonBridgeReady   = "SecondaryBridgeReady"
)

// Switch is what the manager needs of the OVS client.
type Switch interface {
	EnsureBridge(ctx context.Context, cfg ovs.BridgeConfig) error
	EnsureUplinks(ctx context.Context, bridge string, ifaces []string) error
	Reconnected() <-chan struct{}
}

// Manager ensures the bridge.
type Manager struct {
	sw       Switch
	bridge   ovs.BridgeConfig
	uplinks  []string
	recorder record.EventRecorder
	node     *corev1.ObjectReference
	retry    time.Duration

	mu       sync.Mutex
	ready    bool
	lastErr  string
	observer func()
	onState  func(ready bool, missing, refused []string)
	// lastEvents is the message last recorded per reason, so that a retry loop does not record
	// the same problem again; a reason is forgotten when its condition ends.
	lastEvents map[string]string
}

// New returns a Manager. recorder and node may be nil (no Events).
func New(sw Switch, bridge ovs.BridgeConfig, uplinks []string, recorder record.EventRecorder, node *corev1.ObjectReference) *Manager {
	return &Manager{sw: sw, bridge: bridge, uplinks: uplinks, recorder: recorder, node: node, retry: 10 * time.Second}
}

// SetRetryInterval changes how often a degraded bridge is ensured again (default 10s).
func (m *Manager) SetRetryInterval(d time.Duration) { m.retry = d }

// OnReconnect registers a function called after the bridge was ensured following an OVSDB
// reconnection (the pod ports come back with the database; callers may want to reconcile).
func (m *Manager) OnReconnect(f func()) { m.observer = f }

// OnState registers a function called after every attempt to ensure the bridge, with its outcome:
// whether the bridge exists as configured, and the uplinks whose device is missing and those
// refused as management interfaces (nil when none). When the bridge is not ready the uplinks were
// not examined and both are nil. Call it before Run.
func (m *Manager) OnState(f func(ready bool, missing, refused []string)) { m.onState = f }

// Ready returns nil once the bridge exists as configured (uplinks may still be missing).
func (m *Manager) Ready() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.ready {
		return nil
	}
	if m.lastErr != "" {
		return fmt.Errorf("secondary bridge %s is not ready: %s", m.bridge.Name, m.lastErr)
	}
	return fmt.Errorf("secondary bridge %s is not ready yet", m.bridge.Name)
}

// Run ensures the bridge until ctx ends.
func (m *Manager) Run(ctx context.Context) {
	degraded := m.ensure(ctx)
	for {
		var retry <-chan time.Time
		if degraded {
			retry = time.After(m.retry)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.sw.Reconnected():
			klog.InfoS("OVSDB reconnected; ensuring the secondary bridge again", "bridge", m.bridge.Name)
			degraded = m.ensure(ctx)
			if m.observer != nil {
				m.observer()
			}
		case <-retry:
			degraded = m.ensure(ctx)
		}
	}
}

// ensure returns whether something is still wrong and worth retrying.
func (m *Manager) ensure(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := m.sw.EnsureBridge(ctx, m.bridge); err != nil {
		m.setState(false, err.Error())
		m.event(corev1.EventTypeWarning, ReasonBridgeFailed, err.Error())
		klog.ErrorS(err, "Could not ensure the secondary bridge", "bridge", m.bridge.Name)
		m.notifyState(false, nil)
		return true
	}
	err := m.sw.EnsureUplinks(ctx, m.bridge.Name, m.uplinks)
	m.setState(true, "")
	m.notifyState(true, err)
	if err == nil {
		m.event(corev1.EventTypeNormal, ReasonBridgeReady, fmt.Sprintf("bridge %s ready with uplinks [%s]", m.bridge.Name, strings.Join(m.uplinks, " ")))
		klog.InfoS("Secondary bridge ready", "bridge", m.bridge.Name, "uplinks", m.uplinks)
		return false
	}
	var missing *ovs.MissingInterfacesError
	var refused *ovs.ManagementInterfacesError
	isMissing, isRefused := errors.As(err, &missing), errors.As(err, &refused)
	if isRefused {
		// A configuration mistake: retrying does not help until the configuration changes.
		m.event(corev1.EventTypeWarning, ReasonUplinkRefused, refused.Error())
		klog.ErrorS(refused, "Refused uplinks of the secondary bridge", "bridge", m.bridge.Name)
	}
	if isMissing {
		m.event(corev1.EventTypeWarning, ReasonUplinkMissing, missing.Error()+"; retrying every "+m.retry.String())
		klog.ErrorS(missing, "Uplinks of the secondary bridge are missing; will retry", "bridge", m.bridge.Name, "retry", m.retry)
	}
	if !isMissing && !isRefused {
		m.event(corev1.EventTypeWarning, ReasonBridgeFailed, err.Error())
		klog.ErrorS(err, "Could not ensure the uplinks of the secondary bridge", "bridge", m.bridge.Name)
		return true
	}
	return isMissing
}

// notifyState tells the OnState observer the outcome of one ensure.
func (m *Manager) notifyState(ready bool, uplinkErr error) {
	if m.onState == nil {
		return
	}
	missing, refused := uplinkProblems(uplinkErr)
	m.onState(ready, missing, refused)
}

// uplinkProblems names the uplinks that err reports missing and refused, each list sorted and nil
// when empty.
func uplinkProblems(err error) (missing, refused []string) {
	var missingErr *ovs.MissingInterfacesError
	if errors.As(err, &missingErr) && len(missingErr.Names) > 0 {
		missing = slices.Sorted(slices.Values(missingErr.Names))
	}
	var refusedErr *ovs.ManagementInterfacesError
	if errors.As(err, &refusedErr) && len(refusedErr.Reasons) > 0 {
		refused = slices.Sorted(maps.Keys(refusedErr.Reasons))
	}
	return missing, refused
}

func (m *Manager) setState(ready bool, errText string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ready, m.lastErr = ready, errText
}

// event records a Node Event unless the same reason was last recorded with the same message;
// it forgets the reasons that contradict this one, so that a later return is recorded again.
func (m *Manager) event(eventType, reason, message string) {
	if m.recorder == nil || m.node == nil {
		return
	}
	m.mu.Lock()
	if m.lastEvents == nil {
		m.lastEvents = map[string]string{}
	}
	if reason == ReasonBridgeReady {
		clear(m.lastEvents)
	} else {
		delete(m.lastEvents, ReasonBridgeReady)
	}
	if prev, seen := m.lastEvents[reason]; seen && prev == message {
		m.mu.Unlock()
		return
	}
	m.lastEvents[reason] = message
	m.mu.Unlock()
	m.recorder.Event(m.node, eventType, reason, message)
}
