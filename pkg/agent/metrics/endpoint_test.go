package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func get(url string) (int, string, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// poll calls check until it succeeds or 20 seconds have passed.
func poll(t *testing.T, check func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartRefusesMalformedAddresses(t *testing.T) {
	for _, address := range []string{"10351", "127.0.0.1", "127.0.0.1:http", "127.0.0.1:70000", "[::1:10351"} {
		t.Run(address, func(t *testing.T) {
			if err := New().Start(t.Context(), address); err == nil {
				t.Errorf("Start(%q) succeeded", address)
			}
		})
	}
}

func TestEndpointServesMetricsAndHealthOnceThePortIsFree(t *testing.T) {
	// Hold the port first: the endpoint must wait for it rather than give up.
	holder, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	address := holder.Addr().String()
	m := New()
	m.SecondaryBridgeState("br", []string{"eth1"}, true, []string{"eth1"}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := m.start(ctx, address, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	holder.Close()

	poll(t, func() error {
		code, body, err := get("http://" + address + "/healthz")
		if err != nil || code != http.StatusOK || body != "ok" {
			return fmt.Errorf("/healthz: %d %q %v", code, body, err)
		}
		return nil
	})
	code, body, err := get("http://" + address + "/metrics")
	if err != nil || code != http.StatusOK {
		t.Fatalf("/metrics: %d %v", code, err)
	}
	for _, want := range []string{
		`antrea_agent_secondary_uplink_missing{bridge="br",interface="eth1"} 1`,
		`antrea_agent_secondary_bridge_ready{bridge="br"} 1`,
		"go_goroutines ",
		"process_start_time_seconds ",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	cancel()
	poll(t, func() error {
		if _, _, err := get("http://" + address + "/healthz"); err == nil {
			return fmt.Errorf("still serving on %s after the context ended", address)
		}
		return nil
	})
}

func TestProbesAnswerLivenessAlwaysAndReadinessFromTheAgent(t *testing.T) {
	m := New()
	srv := httptest.NewServer(m.Mux())
	defer srv.Close()
	var readyErr atomic.Pointer[error]
	check := func(path string, wantCode int, wantBody string) {
		t.Helper()
		code, body, err := get(srv.URL + path)
		if err != nil || code != wantCode || !strings.Contains(body, wantBody) {
			t.Errorf("%s: %d %q (%v), want %d with %q", path, code, body, err, wantCode, wantBody)
		}
	}
	check("/livez", http.StatusOK, "ok")
	check("/readyz", http.StatusServiceUnavailable, "starting")

	m.SetReadiness(func() error {
		if p := readyErr.Load(); p != nil {
			return *p
		}
		return nil
	})
	notReady := errors.New("invalid antrea-agent.conf: ovsBridges: Forbidden")
	readyErr.Store(&notReady)
	check("/readyz", http.StatusServiceUnavailable, "ovsBridges")
	check("/livez", http.StatusOK, "ok")
	readyErr.Store(nil)
	check("/readyz", http.StatusOK, "ok")
}
