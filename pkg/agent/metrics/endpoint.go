package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"k8s.io/klog/v2"
)

// listenRetry is how often Start tries again to bind an address that is in use.
const listenRetry = 5 * time.Second

// Mux routes /metrics to the metrics, answers /healthz and /livez (the liveness probe) with "ok"
// while the process serves HTTP, and /readyz (the readiness probe) with "ok" when the function
// given to SetReadiness returns nil, else 503 and its error.
func (m *Metrics) Mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	alive := func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}
	mux.HandleFunc("GET /healthz", alive)
	mux.HandleFunc("GET /livez", alive)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		err := errors.New("antrea-agent is starting")
		if ready := m.ready.Load(); ready != nil {
			err = (*ready)()
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	return mux
}

// SetReadiness makes /readyz answer with ready: nil means the agent can serve CNI ADD in full.
func (m *Metrics) SetReadiness(ready func() error) { m.ready.Store(&ready) }

// Start serves Mux over plain HTTP on address (host:port) in the background until ctx ends. A
// malformed address is an error. An address that cannot be bound (the port is in use) is logged
// and tried again every few seconds: metrics must never keep the agent from attaching networks.
func (m *Metrics) Start(ctx context.Context, address string) error {
	return m.start(ctx, address, listenRetry)
}

func (m *Metrics) start(ctx context.Context, address string, retry time.Duration) error {
	if err := checkAddress(address); err != nil {
		return err
	}
	srv := &http.Server{Handler: m.Mux(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		ln := listenUntilBound(ctx, address, retry)
		if ln == nil {
			return
		}
		klog.InfoS("Serving metrics", "address", ln.Addr().String())
		stop := context.AfterFunc(ctx, func() {
			shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdownCtx)
		})
		defer stop()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			klog.ErrorS(err, "Metrics endpoint stopped serving", "address", address)
		}
	}()
	return nil
}

// listenUntilBound binds address, trying again every retry; it returns nil once ctx ends.
func listenUntilBound(ctx context.Context, address string, retry time.Duration) net.Listener {
	var lc net.ListenConfig
	lastErr := ""
	for {
		ln, err := lc.Listen(ctx, "tcp", address)
		if err == nil {
			return ln
		}
		// Log a problem once, not at every attempt.
		if err.Error() != lastErr {
			lastErr = err.Error()
			klog.ErrorS(err, "Cannot serve metrics yet; retrying", "address", address, "retry", retry)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(retry):
		}
	}
}

// checkAddress accepts host:port with a numeric port, the form net.Listen takes for TCP.
func checkAddress(address string) error {
	_, port, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("metrics address %q: %w", address, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("metrics address %q: port must be a number from 0 to 65535", address)
	}
	return nil
}
