// Package health serves antrea-controller's /healthz (the process serves HTTP) and /readyz (every
// readiness check passes: caches synced, webhook serving and registered). Checks are registered by
// name; a failing /readyz lists which ones are not ready.
package health

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

// Checks is a set of named readiness conditions.
type Checks struct {
	mu     sync.Mutex
	checks map[string]func() error
}

// NewChecks returns an empty set; with no checks the process is ready.
func NewChecks() *Checks { return &Checks{checks: map[string]func() error{}} }

// Add registers a check; a nil error means ready.
func (c *Checks) Add(name string, check func() error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checks[name] = check
}

// AddFlag registers a check that passes once the returned flag is set, for one-time conditions
// such as "the webhook configuration is registered".
func (c *Checks) AddFlag(name string) *atomic.Bool {
	flag := &atomic.Bool{}
	c.Add(name, func() error {
		if !flag.Load() {
			return errors.New("not yet")
		}
		return nil
	})
	return flag
}

// Failing returns "name: reason" for every failing check, sorted by name.
func (c *Checks) Failing() []string {
	c.mu.Lock()
	names := make([]string, 0, len(c.checks))
	for name := range c.checks {
		names = append(names, name)
	}
	checks := make(map[string]func() error, len(c.checks))
	for k, v := range c.checks {
		checks[k] = v
	}
	c.mu.Unlock()
	sort.Strings(names)
	var failing []string
	for _, name := range names {
		if err := checks[name](); err != nil {
			failing = append(failing, fmt.Sprintf("%s: %v", name, err))
		}
	}
	return failing
}

// Register adds /healthz and /readyz to mux.
func (c *Checks) Register(mux *http.ServeMux) {
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if failing := c.Failing(); len(failing) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "not ready:\n%s\n", strings.Join(failing, "\n"))
			return
		}
		fmt.Fprintln(w, "ok")
	})
}
