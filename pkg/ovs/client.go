package ovs

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/ovs/vswitchd"
)

// ErrNotConnected is returned (wrapped) by every call made while the client has no working OVSDB
// session, for instance while ovsdb-server restarts. The client keeps reconnecting on its own;
// callers retry later, and re-ensure their state once Reconnected fires.
var ErrNotConnected = errors.New("not connected to OVSDB")

// Defaults of the client's options.
const (
	DefaultCallTimeout  = 10 * time.Second
	DefaultReadyTimeout = 10 * time.Second
	DefaultMinReconnect = 100 * time.Millisecond
	DefaultMaxReconnect = 5 * time.Second
)

const (
	connectAttemptTimeout  = 5 * time.Second        // one dial + schema + monitor round
	cacheRecheckInterval   = 250 * time.Millisecond // re-read the cache even without an event
	disconnectAckTimeout   = 5 * time.Second        // for libovsdb to tear a half-made session down
	rollbackTimeout        = 5 * time.Second
	reconnectLogEveryTries = 20
)

// Option configures a Client.
type Option func(*options)

type options struct {
	callTimeout  time.Duration
	readyTimeout time.Duration
	minReconnect time.Duration
	maxReconnect time.Duration
	nodeIPs      []net.IP
	hostNetNS    string
}

// WithCallTimeout bounds every OVSDB transaction (default DefaultCallTimeout) so that a stalled
// server cannot hang a caller whose context has no deadline.
func WithCallTimeout(d time.Duration) Option { return func(o *options) { o.callTimeout = d } }

// WithReadyTimeout bounds how long a change waits for ovs-vswitchd to realise it (a port to get
// its ofport, a bridge its datapath); default DefaultReadyTimeout. An earlier context deadline
// wins.
func WithReadyTimeout(d time.Duration) Option { return func(o *options) { o.readyTimeout = d } }

// WithReconnectBackoff sets the first and the longest pause between reconnection attempts after
// the OVSDB session is lost (defaults DefaultMinReconnect and DefaultMaxReconnect).
func WithReconnectBackoff(minDelay, maxDelay time.Duration) Option {
	return func(o *options) { o.minReconnect, o.maxReconnect = minDelay, maxDelay }
}

// WithNodeIPs names the Node's own addresses; EnsureUplinks refuses an interface that holds one of
// them (it refuses interfaces carrying a default route in any case).
func WithNodeIPs(ips ...net.IP) Option {
	return func(o *options) { o.nodeIPs = append(o.nodeIPs, ips...) }
}

// WithHostNetNS names the network namespace (a path such as /var/run/netns/x) where the uplink
// interfaces and ovs-vswitchd live, when that is not the caller's own; EnsureUplinks inspects
// interfaces there.
func WithHostNetNS(path string) Option { return func(o *options) { o.hostNetNS = path } }

// Client is one long-lived OVSDB session with a monitor cache of the Open_vSwitch, Bridge, Port
// and Interface tables. It reconnects by itself; it is safe for concurrent use.
type Client struct {
	endpoint string
	opts     options
	db       client.Client

	connected atomic.Bool
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// disconnects carries libovsdb's disconnect notifications, which it drops unless someone is
	// receiving at that very moment; a forwarder goroutine always is.
	disconnects chan struct{}
	reconnected chan struct{}

	changeMu sync.Mutex
	changeCh chan struct{} // closed and replaced whenever the cache or the session changes
}

// Connect opens the OVSDB session at endpoint ("unix:/run/openvswitch/db.sock", "tcp:host:port")
// and establishes the monitor. It retries with backoff until that works or ctx ends, so an agent
// may start before ovsdb-server.
func Connect(ctx context.Context, endpoint string, opts ...Option) (*Client, error) {
	o := options{
		callTimeout:  DefaultCallTimeout,
		readyTimeout: DefaultReadyTimeout,
		minReconnect: DefaultMinReconnect,
		maxReconnect: DefaultMaxReconnect,
	}
	for _, opt := range opts {
		opt(&o)
	}
	if err := validateEndpoint(endpoint); err != nil {
		return nil, err
	}
	if o.minReconnect <= 0 || o.maxReconnect < o.minReconnect {
		return nil, fmt.Errorf("invalid reconnect backoff %v..%v", o.minReconnect, o.maxReconnect)
	}
	dbModel, err := model.NewClientDBModel("Open_vSwitch", map[string]model.Model{
		vswitchd.OpenvSwitchTable: &vswitchd.OpenvSwitch{},
		vswitchd.BridgeTable:      &vswitchd.Bridge{},
		vswitchd.PortTable:        &vswitchd.Port{},
		vswitchd.InterfaceTable:   &vswitchd.Interface{},
	})
	if err != nil {
		return nil, fmt.Errorf("build OVSDB client model: %w", err)
	}
	logger := klog.Background().WithName("libovsdb")
	// No client.WithReconnect: with it libovsdb blocks calls until it has reconnected (instead of
	// failing fast), keeps reporting Connected() after the server went away, and panics when its
	// backoff gives up. We reconnect ourselves, with the same client object.
	db, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(endpoint), client.WithLogger(&logger))
	if err != nil {
		return nil, fmt.Errorf("create OVSDB client for %s: %w", endpoint, err)
	}
	c := &Client{
		endpoint:    endpoint,
		opts:        o,
		db:          db,
		done:        make(chan struct{}),
		disconnects: make(chan struct{}, 1),
		reconnected: make(chan struct{}, 1),
		changeCh:    make(chan struct{}),
	}
	c.wg.Add(1)
	go c.forwardDisconnects()

	delay := newBackoff(o.minReconnect, o.maxReconnect)
	for attempt := 1; ; attempt++ {
		err := c.connectOnce(ctx)
		if err == nil {
			break
		}
		klog.V(2).InfoS("OVSDB not reachable yet, retrying", "endpoint", endpoint, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(delay.next()):
		}
		if ctx.Err() != nil {
			c.Close()
			return nil, fmt.Errorf("connect to OVSDB at %s (%d attempts): %w; last error: %w", endpoint, attempt, ctx.Err(), err)
		}
	}
	klog.InfoS("Connected to OVSDB", "endpoint", endpoint)
	c.wg.Add(1)
	go c.superviseSession()
	return c, nil
}

// Endpoint returns the OVSDB endpoint the client talks to.
func (c *Client) Endpoint() string { return c.endpoint }

// Connected reports whether the session is up and the monitor cache current.
func (c *Client) Connected() bool { return c.connected.Load() }

// Reconnected delivers a value after each time the session was lost and then re-established
// (with the monitor cache repopulated): the caller's cue to re-ensure the bridge and uplinks.
// Notifications that arrive while an earlier one is still unread are merged into it.
func (c *Client) Reconnected() <-chan struct{} { return c.reconnected }

// Close ends the session and stops reconnecting. Calls made afterwards fail with ErrNotConnected.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.connected.Store(false)
		c.db.Close()
		c.notifyChange()
		c.wg.Wait()
	})
}

func (c *Client) closed() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// connectOnce opens the session and establishes the monitor. libovsdb builds a fresh cache on
// every connection, so the change handler is registered again each time.
func (c *Client) connectOnce(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, connectAttemptTimeout)
	defer cancel()
	if err := c.db.Connect(ctx); err != nil {
		return err
	}
	c.db.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc:    func(string, model.Model) { c.notifyChange() },
		UpdateFunc: func(string, model.Model, model.Model) { c.notifyChange() },
		DeleteFunc: func(string, model.Model) { c.notifyChange() },
	})
	monitor := c.db.NewMonitor(
		client.WithTable(&vswitchd.OpenvSwitch{}),
		client.WithTable(&vswitchd.Bridge{}),
		client.WithTable(&vswitchd.Port{}),
		client.WithTable(&vswitchd.Interface{}),
	)
	if _, err := c.db.Monitor(ctx, monitor); err != nil {
		// Drop the half-made session and wait until libovsdb has torn it down, or a later
		// Connect would find it "already connected" without a monitor.
		c.db.Disconnect()
		select {
		case <-c.disconnects:
		case <-c.done:
		case <-time.After(disconnectAckTimeout):
		}
		return fmt.Errorf("monitor OVSDB tables: %w", err)
	}
	c.connected.Store(true)
	c.notifyChange()
	return nil
}

func (c *Client) forwardDisconnects() {
	defer c.wg.Done()
	notify := c.db.DisconnectNotify()
	for {
		select {
		case <-c.done:
			return
		case <-notify:
			select {
			case c.disconnects <- struct{}{}:
			default:
			}
		}
	}
}

// superviseSession waits for the session to drop and brings it back with backoff.
func (c *Client) superviseSession() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.disconnects:
		}
		c.connected.Store(false)
		c.notifyChange()
		if c.closed() {
			return
		}
		klog.InfoS("Lost the OVSDB session, reconnecting", "endpoint", c.endpoint)
		delay := newBackoff(c.opts.minReconnect, c.opts.maxReconnect)
		for attempt := 1; ; attempt++ {
			err := c.connectOnce(context.Background())
			if c.closed() {
				c.db.Close()
				return
			}
			if err == nil {
				klog.InfoS("Reconnected to OVSDB", "endpoint", c.endpoint, "attempts", attempt)
				break
			}
			if attempt%reconnectLogEveryTries == 1 {
				klog.ErrorS(err, "Reconnecting to OVSDB failed, will retry", "endpoint", c.endpoint, "attempt", attempt)
			}
			select {
			case <-c.done:
				return
			case <-time.After(delay.next()):
			}
		}
		select {
		case c.reconnected <- struct{}{}:
		default:
		}
	}
}

// changes returns a channel closed at the next cache or session change. Take it before reading
// the cache, so that a change between the read and the wait is not missed.
func (c *Client) changes() <-chan struct{} {
	c.changeMu.Lock()
	defer c.changeMu.Unlock()
	return c.changeCh
}

func (c *Client) notifyChange() {
	c.changeMu.Lock()
	defer c.changeMu.Unlock()
	close(c.changeCh)
	c.changeCh = make(chan struct{})
}

// checkConnected fails fast, with ErrNotConnected, when the cache cannot be trusted.
func (c *Client) checkConnected() error {
	if c.closed() {
		return fmt.Errorf("%w: client for %s is closed", ErrNotConnected, c.endpoint)
	}
	if !c.connected.Load() {
		return fmt.Errorf("%w: session to %s lost, reconnecting", ErrNotConnected, c.endpoint)
	}
	return nil
}

// transact runs ops as one transaction and turns per-operation failures into one error.
func (c *Client) transact(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	if err := c.checkConnected(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.callTimeout)
	defer cancel()
	results, err := c.db.Transact(ctx, ops...)
	if err != nil {
		if errors.Is(err, client.ErrNotConnected) {
			return nil, fmt.Errorf("%w: %v", ErrNotConnected, err)
		}
		return nil, fmt.Errorf("OVSDB transaction: %w", err)
	}
	if opErrs, err := ovsdb.CheckOperationResults(results, ops); err != nil {
		// Failures of single operations come in opErrs; a failed commit (e.g. a duplicate name)
		// comes as err alone.
		failures := []error{err}
		if len(opErrs) > 0 {
			failures = failures[:0]
			for _, e := range opErrs {
				failures = append(failures, e)
			}
		}
		details := make([]string, 0, len(failures))
		violation := false
		for _, e := range failures {
			details = append(details, e.Error())
			var cv *ovsdb.ConstraintViolation
			violation = violation || errors.As(e, &cv)
		}
		if violation {
			return nil, fmt.Errorf("OVSDB transaction: %w: %s", errConstraintViolation, strings.Join(details, "; "))
		}
		return nil, fmt.Errorf("OVSDB transaction: %s", strings.Join(details, "; "))
	}
	return results, nil
}

// errConstraintViolation marks a transaction that OVSDB refused for breaking a constraint. Ours
// only do that when the cache missed a row another client had just written (a bridge or port of
// the same name), so the operation is worth repeating once the cache has caught up.
var errConstraintViolation = errors.New("constraint violation")

// retryOnStaleCache runs op, and once more after syncCache when it failed on a constraint
// violation.
func (c *Client) retryOnStaleCache(ctx context.Context, op func() error) error {
	err := op()
	if !errors.Is(err, errConstraintViolation) {
		return err
	}
	klog.V(2).InfoS("OVSDB refused a change the cache allowed, retrying once the cache caught up", "err", err)
	if syncErr := c.syncCache(ctx); syncErr != nil {
		return errors.Join(err, syncErr)
	}
	return op()
}

// syncCache returns once the cache holds everything committed to OVSDB before the call: it
// makes a change of its own (next_cfg += 1) and waits for the monitor to deliver it, which the
// server does after every earlier change.
func (c *Client) syncCache(ctx context.Context) error {
	ovsRow, err := c.openvSwitchRow(ctx)
	if err != nil {
		return err
	}
	ops, err := c.bumpConfigOps(ovsRow)
	if err != nil {
		return err
	}
	results, err := c.transact(ctx, ops)
	if err != nil {
		return fmt.Errorf("sync the cache: %w", err)
	}
	target, err := configTarget(results)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.opts.callTimeout)
	defer cancel()
	return c.waitUntil(ctx, func() (bool, error) {
		row, err := c.openvSwitchRow(ctx)
		if err != nil {
			return false, err
		}
		return row.NextCfg >= target, nil
	})
}

// waitUntil re-evaluates cond on every cache change until it reports done or an error, the
// session drops, or ctx ends. A slow periodic re-check guards against a dropped cache event.
func (c *Client) waitUntil(ctx context.Context, cond func() (bool, error)) error {
	ticker := time.NewTicker(cacheRecheckInterval)
	defer ticker.Stop()
	for {
		changed := c.changes()
		if err := c.checkConnected(); err != nil {
			return err
		}
		done, err := cond()
		if err != nil || done {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-ticker.C:
		}
	}
}

// readyContext bounds a wait for ovs-vswitchd by the ready timeout.
func (c *Client) readyContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.opts.readyTimeout)
}

// openvSwitchRow returns the single row of the Open_vSwitch table from the cache.
func (c *Client) openvSwitchRow(ctx context.Context) (*vswitchd.OpenvSwitch, error) {
	var rows []*vswitchd.OpenvSwitch
	if err := c.db.List(ctx, &rows); err != nil {
		return nil, fmt.Errorf("list Open_vSwitch: %w", err)
	}
	if len(rows) != 1 {
		return nil, fmt.Errorf("OVSDB holds %d Open_vSwitch rows, want 1 (was the database initialised?)", len(rows))
	}
	return rows[0], nil
}

// bumpConfigOps asks ovs-vswitchd to report, through cur_cfg, when it has applied the rest of
// the transaction: it increments next_cfg and reads the new value back (the ovs-vsctl technique).
// The select result is the last element of the transaction's results.
func (c *Client) bumpConfigOps(row *vswitchd.OpenvSwitch) ([]ovsdb.Operation, error) {
	ops, err := c.db.Where(row).Mutate(row, model.Mutation{
		Field: &row.NextCfg, Mutator: ovsdb.MutateOperationAdd, Value: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("build next_cfg mutation: %w", err)
	}
	return append(ops, ovsdb.Operation{
		Op:      ovsdb.OperationSelect,
		Table:   vswitchd.OpenvSwitchTable,
		Where:   []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: row.UUID}}},
		Columns: []string{"next_cfg"},
	}), nil
}

// configTarget extracts the next_cfg value selected by bumpConfigOps.
func configTarget(results []ovsdb.OperationResult) (int, error) {
	if len(results) == 0 || len(results[len(results)-1].Rows) != 1 {
		return 0, errors.New("transaction result lacks the selected next_cfg")
	}
	switch v := results[len(results)-1].Rows[0]["next_cfg"].(type) {
	case float64:
		return int(v), nil
	case int:
		return v, nil
	default:
		return 0, fmt.Errorf("unexpected next_cfg value %#v", v)
	}
}

// waitConfigApplied waits until ovs-vswitchd reports cur_cfg >= target.
func (c *Client) waitConfigApplied(ctx context.Context, target int) error {
	err := c.waitUntil(ctx, func() (bool, error) {
		row, err := c.openvSwitchRow(ctx)
		if err != nil {
			return false, err
		}
		return row.CurCfg >= target, nil
	})
	if err != nil && ctx.Err() != nil && !errors.Is(err, ErrNotConnected) {
		return fmt.Errorf("ovs-vswitchd did not apply configuration %d in time (is it running?): %w", target, err)
	}
	return err
}

func validateEndpoint(endpoint string) error {
	scheme, rest, ok := strings.Cut(endpoint, ":")
	if !ok || rest == "" {
		return fmt.Errorf("invalid OVSDB endpoint %q: want unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT", endpoint)
	}
	switch scheme {
	case "unix", "tcp", "ssl":
		return nil
	default:
		return fmt.Errorf("invalid OVSDB endpoint %q: unknown scheme %q (want unix, tcp or ssl)", endpoint, scheme)
	}
}

// backoff doubles its delay up to a ceiling, with jitter so that many agents restarting together
// do not reconnect in lockstep.
type backoff struct {
	cur, max time.Duration
}

func newBackoff(minDelay, maxDelay time.Duration) *backoff {
	return &backoff{cur: minDelay, max: maxDelay}
}

func (b *backoff) next() time.Duration {
	d := b.cur
	b.cur = min(2*b.cur, b.max)
	return d/2 + rand.N(d/2+1)
}

// insertOps builds the inserts of rows of several tables: libovsdb's Create takes the models of
// one table per call.
func (c *Client) insertOps(models ...model.Model) ([]ovsdb.Operation, error) {
	var ops []ovsdb.Operation
	for _, m := range models {
		op, err := c.db.Create(m)
		if err != nil {
			return nil, fmt.Errorf("build insert: %w", err)
		}
		ops = append(ops, op...)
	}
	return ops, nil
}
