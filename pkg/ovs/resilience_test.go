package ovs_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/podvlan/podvlan/pkg/ovs"
)

// recoveryTimeout bounds waits for the client or vswitchd to come back; a liveness bound only.
const recoveryTimeout = 30 * time.Second

// failFastBound is the deadline given to calls made while ovsdb-server is down: they must return
// ErrNotConnected, not hang until the deadline.
const failFastBound = 2 * time.Second

func fastReconnect() ovs.Option {
	return ovs.WithReconnectBackoff(50*time.Millisecond, 500*time.Millisecond)
}

func waitReconnected(t *testing.T, c *ovs.Client) {
	t.Helper()
	select {
	case <-c.Reconnected():
	case <-time.After(recoveryTimeout):
		t.Fatalf("client did not reconnect within %v", recoveryTimeout)
	}
	if !c.Connected() {
		t.Fatal("Reconnected fired but Connected() is false")
	}
}

// waitAllReady waits until every Pod port on bridge has an OpenFlow port number.
func waitAllReady(t *testing.T, c *ovs.Client, bridge string, want int) []ovs.PodPort {
	t.Helper()
	deadline := time.Now().Add(recoveryTimeout)
	for {
		ports, err := c.ListPodPorts(testContext(t), bridge)
		ready := 0
		for _, p := range ports {
			if p.OFPort > 0 {
				ready++
			}
		}
		if err == nil && len(ports) == want && ready == want {
			return ports
		}
		if time.Now().After(deadline) {
			t.Fatalf("ports on %s not all ready: %+v (err %v), want %d ready", bridge, ports, err, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestSurvivesOVSDBServerRestart(t *testing.T) {
	s := startStack(t, fastReconnect())
	br := s.bridge(t)
	a, b := s.newPod(t, "10.80.0.2/24"), s.newPod(t, "10.80.0.3/24")
	s.plug(t, br, a, 100)
	s.plug(t, br, b, 100)
	if !pingEventually(a, b.ip()) {
		t.Fatal("no traffic before the restart")
	}

	s.ovs.RestartDB(t)
	waitReconnected(t, s.client)

	t.Run("the cache is repopulated with the ports", func(t *testing.T) {
		waitAllReady(t, s.client, br, 2)
	})
	t.Run("the bridge can be ensured again", func(t *testing.T) {
		if err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: br, DatapathType: ovs.DatapathNetdev}); err != nil {
			t.Fatalf("EnsureBridge: %v", err)
		}
	})
	t.Run("new ports work and reach the old ones", func(t *testing.T) {
		c := s.newPod(t, "10.80.0.4/24")
		s.plug(t, br, c, 100)
		if !pingEventually(c, a.ip()) {
			t.Fatal("new pod cannot reach an old one")
		}
	})
	t.Run("traffic between the old ports still flows", func(t *testing.T) {
		if !pingEventually(a, b.ip()) {
			t.Fatal("no traffic after the restart")
		}
	})
}

func TestCallsFailFastWhileOVSDBServerIsDown(t *testing.T) {
	s := startStack(t, fastReconnect())
	br := s.bridge(t)
	p := s.newPod(t, "")
	s.plug(t, br, p, 100)

	stopDaemon(t, s, "ovsdb-server")
	deadline := time.Now().Add(recoveryTimeout)
	for s.client.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("client still reports Connected() after ovsdb-server stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}

	fresh := s.newPod(t, "")
	for name, call := range map[string]func(context.Context) error{
		"EnsureBridge": func(ctx context.Context) error {
			return s.client.EnsureBridge(ctx, ovs.BridgeConfig{Name: br, DatapathType: ovs.DatapathNetdev})
		},
		"EnsureUplinks": func(ctx context.Context) error { return s.client.EnsureUplinks(ctx, br, nil) },
		"CreateAccessPort": func(ctx context.Context) error {
			_, err := s.client.CreateAccessPort(ctx, ovs.PortSpec{Bridge: br, Name: fresh.host, VLAN: 100, Owner: fresh.owner("")})
			return err
		},
		"DeletePort":   func(ctx context.Context) error { return s.client.DeletePort(ctx, p.host) },
		"ListPodPorts": func(ctx context.Context) error { _, err := s.client.ListPodPorts(ctx, br); return err },
	} {
		t.Run(name+" fails with ErrNotConnected", func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), failFastBound)
			defer cancel()
			err := call(ctx)
			if !errors.Is(err, ovs.ErrNotConnected) {
				t.Fatalf("%s while ovsdb-server is down = %v, want ErrNotConnected", name, err)
			}
		})
	}

	s.ovs.RestartDB(t)
	waitReconnected(t, s.client)
	t.Run("calls work again once ovsdb-server is back", func(t *testing.T) {
		ports := waitAllReady(t, s.client, br, 1)
		if ports[0].Name != p.host {
			t.Fatalf("ports after the outage = %+v, want %s", ports, p.host)
		}
		s.plug(t, br, fresh, 100)
	})
}

// stopDaemon stops one of the test's OVS daemons by its pidfile and waits until it is gone.
func stopDaemon(t *testing.T, s *stack, daemon string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(s.ovs.Dir, "run", daemon+".pid"))
	if err != nil {
		t.Fatalf("read %s pidfile: %v", daemon, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatalf("parse %s pidfile: %v", daemon, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("stop %s %d: %v", daemon, pid, err)
	}
	deadline := time.Now().Add(recoveryTimeout)
	for processRunning(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("%s %d did not exit", daemon, pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processRunning reports whether pid is alive; a zombie is not, since the daemons are reparented
// to a PID 1 that may be slow to reap them.
func processRunning(pid int) bool {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(status), "\n") {
		if state, ok := strings.CutPrefix(line, "State:"); ok {
			return !strings.HasPrefix(strings.TrimSpace(state), "Z")
		}
	}
	return false
}

func TestSurvivesVswitchdRestart(t *testing.T) {
	s := startStack(t)
	br := s.bridge(t)
	a, b := s.newPod(t, "10.81.0.2/24"), s.newPod(t, "10.81.0.3/24")
	s.plug(t, br, a, 100)
	s.plug(t, br, b, 100)
	if !pingEventually(a, b.ip()) {
		t.Fatal("no traffic before the restart")
	}

	s.ovs.RestartSwitch(t)

	t.Run("the session to ovsdb-server is unaffected", func(t *testing.T) {
		if !s.client.Connected() {
			t.Fatal("client lost its session although only vswitchd restarted")
		}
	})
	t.Run("the ports regain an OpenFlow port number", func(t *testing.T) {
		waitAllReady(t, s.client, br, 2)
	})
	t.Run("traffic flows again", func(t *testing.T) {
		if !pingEventually(a, b.ip()) {
			t.Fatal("no traffic after vswitchd restarted")
		}
	})
	t.Run("the bridge is ensured and new ports work", func(t *testing.T) {
		if err := s.client.EnsureBridge(testContext(t), ovs.BridgeConfig{Name: br, DatapathType: ovs.DatapathNetdev}); err != nil {
			t.Fatalf("EnsureBridge: %v", err)
		}
		c := s.newPod(t, "10.81.0.4/24")
		s.plug(t, br, c, 100)
		if !pingEventually(c, a.ip()) {
			t.Fatal("new pod cannot reach an old one")
		}
	})
}

func TestClosedClientFailsWithErrNotConnected(t *testing.T) {
	s := startStack(t)
	br := s.bridge(t)
	s.client.Close()
	if s.client.Connected() {
		t.Fatal("Connected() after Close")
	}
	if _, err := s.client.ListPodPorts(testContext(t), br); !errors.Is(err, ovs.ErrNotConnected) {
		t.Fatalf("ListPodPorts after Close = %v, want ErrNotConnected", err)
	}
	s.client.Close() // a second Close is harmless
}

func TestConnectGivesUpWhenTheContextEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err := ovs.Connect(ctx, "unix:"+filepath.Join(t.TempDir(), "no-such.sock"))
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Connect to a missing socket = %v, want a deadline error", err)
	}
}

func TestPortCreateWhileVswitchdIsDownFailsAndLeavesNothing(t *testing.T) {
	s := startStack(t)
	br := s.bridge(t)
	p := s.newPod(t, "")
	stopDaemon(t, s, "ovs-vswitchd")
	t.Cleanup(func() { s.ovs.RestartSwitch(t) }) // so that teardown can delete the bridge

	ctx, cancel := context.WithTimeout(context.Background(), failFastBound)
	defer cancel()
	_, err := s.client.CreateAccessPort(ctx, ovs.PortSpec{Bridge: br, Name: p.host, VLAN: 100, Owner: p.owner("")})
	var notReady *ovs.PortNotReadyError
	if !errors.As(err, &notReady) || !strings.Contains(err.Error(), "is ovs-vswitchd running?") {
		t.Fatalf("CreateAccessPort without vswitchd = %v, want a *PortNotReadyError asking whether vswitchd runs", err)
	}
	if out := s.ovs.Vsctl(t, "--if-exists", "get", "Port", p.host, "name"); strings.TrimSpace(out) != "" {
		t.Fatalf("the port that never became ready is still in OVSDB")
	}
}
