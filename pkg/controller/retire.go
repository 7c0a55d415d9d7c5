package controller

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
)

// connectionRetirer moves kept-alive connections onto a renewed certificate without ever
// closing one under a client: TLS checks a certificate at the handshake only, so a connection
// opened before a rotation would go on with the old one until it is closed. Closing idle
// connections from the server races with a client that has just taken one from its pool to
// write a request (the API server then sees "broken pipe" and the webhook call fails); asking
// the client to close, with "Connection: close" on the next response, cannot.
type connectionRetirer struct {
	generation atomic.Uint64
}

type connGenerationKey struct{}

// certificateChanged is called after each certificate put into service.
func (r *connectionRetirer) certificateChanged() { r.generation.Add(1) }

// connContext is the server's ConnContext: a connection remembers the generation it was
// accepted under.
func (r *connectionRetirer) connContext(ctx context.Context, _ net.Conn) context.Context {
	return context.WithValue(ctx, connGenerationKey{}, r.generation.Load())
}

// wrap answers every request of a connection accepted before the latest certificate change
// with "Connection: close": the server closes the connection after that response and the
// client opens a new one, which gets the new certificate.
func (r *connectionRetirer) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if accepted, ok := req.Context().Value(connGenerationKey{}).(uint64); ok && accepted < r.generation.Load() {
			w.Header().Set("Connection", "close")
		}
		next.ServeHTTP(w, req)
	})
}
