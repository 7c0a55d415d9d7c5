package controller

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"testing"
)

func TestConnectionsAcceptedBeforeACertificateChangeAreAskedToClose(t *testing.T) {
	var retirer connectionRetirer
	srv := httptest.NewUnstartedServer(retirer.wrap(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})))
	srv.Config.ConnContext = retirer.connContext
	srv.Start()
	defer srv.Close()
	client := srv.Client()

	get := func() (reused, closeAsked bool) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
		if err != nil {
			t.Fatal(err)
		}
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return reused, resp.Close
	}
	steps := []struct {
		name               string
		rotateBefore       bool
		reused, closeAsked bool
	}{
		{name: "first request opens a connection"},
		{name: "second request reuses it", reused: true},
		{name: "after a change, the old connection answers once more and asks to close", rotateBefore: true, reused: true, closeAsked: true},
		{name: "the next request opens a new connection, kept alive", reused: false},
		{name: "which is reused", reused: true},
	}
	for _, s := range steps {
		if s.rotateBefore {
			retirer.certificateChanged()
		}
		reused, closeAsked := get()
		if reused != s.reused || closeAsked != s.closeAsked {
			t.Errorf("%s: reused=%v Connection: close=%v, want %v %v", s.name, reused, closeAsked, s.reused, s.closeAsked)
		}
	}
}
