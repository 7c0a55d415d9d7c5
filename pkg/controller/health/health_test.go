package health

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, mux *http.ServeMux, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

func TestReadiness(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(c *Checks)
		wantCode int
		wantBody []string
	}{
		{
			name:     "ready with no checks",
			setup:    func(*Checks) {},
			wantCode: http.StatusOK,
		},
		{
			name:     "not ready while a flag is unset, naming it",
			setup:    func(c *Checks) { c.AddFlag("webhook-registered") },
			wantCode: http.StatusServiceUnavailable,
			wantBody: []string{"webhook-registered: not yet"},
		},
		{
			name:     "ready once the flag is set",
			setup:    func(c *Checks) { c.AddFlag("webhook-registered").Store(true) },
			wantCode: http.StatusOK,
		},
		{
			name: "lists only the failing checks",
			setup: func(c *Checks) {
				c.Add("caches-synced", func() error { return errors.New("IPPools not synced") })
				c.Add("serving", func() error { return nil })
			},
			wantCode: http.StatusServiceUnavailable,
			wantBody: []string{"caches-synced: IPPools not synced"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewChecks()
			tt.setup(c)
			mux := http.NewServeMux()
			c.Register(mux)
			code, body := get(t, mux, "/readyz")
			if code != tt.wantCode {
				t.Errorf("code %d, want %d (body %q)", code, tt.wantCode, body)
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(body, want) {
					t.Errorf("body %q lacks %q", body, want)
				}
			}
			if strings.Contains(body, "serving:") {
				t.Errorf("body %q lists a passing check", body)
			}
		})
	}
}

func TestHealthzAnswersWhileNotReady(t *testing.T) {
	c := NewChecks()
	c.AddFlag("never")
	mux := http.NewServeMux()
	c.Register(mux)
	if code, body := get(t, mux, "/healthz"); code != http.StatusOK {
		t.Fatalf("healthz %d %q, want 200", code, body)
	}
}
