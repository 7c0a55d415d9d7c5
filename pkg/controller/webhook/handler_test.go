package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestServeHTTP(t *testing.T) {
	review := func(t *testing.T, req *admissionv1.AdmissionRequest) []byte {
		b, err := json.Marshal(admissionv1.AdmissionReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name         string
		method       string
		contentType  string
		body         func(t *testing.T) []byte
		wantStatus   int
		wantAllowed  bool
		wantDenialOp string
	}{
		{
			name: "an allowed review is answered with the request's UID", method: http.MethodPost, contentType: "application/json",
			body:       func(t *testing.T) []byte { return review(t, request(t, admissionv1.Create, base, nil)) },
			wantStatus: http.StatusOK, wantAllowed: true,
		},
		{
			name: "a denied review is answered and counted as a denial", method: http.MethodPost, contentType: "application/json; charset=utf-8",
			body:       func(t *testing.T) []byte { return review(t, request(t, admissionv1.Delete, nil, withAllocation(base))) },
			wantStatus: http.StatusOK, wantDenialOp: "DELETE",
		},
		{
			name: "GET is refused", method: http.MethodGet, contentType: "application/json",
			body: func(*testing.T) []byte { return nil }, wantStatus: http.StatusMethodNotAllowed,
		},
		{
			name: "a body that is not JSON is refused", method: http.MethodPost, contentType: "text/plain",
			body: func(*testing.T) []byte { return []byte("x") }, wantStatus: http.StatusUnsupportedMediaType,
		},
		{
			name: "a review without a request is refused", method: http.MethodPost, contentType: "application/json",
			body: func(*testing.T) []byte {
				return []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`)
			}, wantStatus: http.StatusBadRequest,
		},
		{
			name: "malformed JSON is refused", method: http.MethodPost, contentType: "application/json",
			body: func(*testing.T) []byte { return []byte(`{"request": `) }, wantStatus: http.StatusBadRequest,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			h := newTestHandler(&fakeLister{}, &now)
			rec := httptest.NewRecorder()
			r := httptest.NewRequest(tt.method, Path, bytes.NewReader(tt.body(t)))
			r.Header.Set("Content-Type", tt.contentType)
			h.ServeHTTP(rec, r)
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d (body %s)", rec.Code, tt.wantStatus, rec.Body)
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview" || out.Response == nil {
				t.Fatalf("answer %+v is not an AdmissionReview with a response", out)
			}
			if out.Response.UID != "uid-1" || out.Response.Allowed != tt.wantAllowed {
				t.Fatalf("response %+v, want UID uid-1 allowed=%v", out.Response, tt.wantAllowed)
			}
			rec2 := h.recorder.(*countingRecorder)
			if tt.wantDenialOp != "" && rec2.denials[tt.wantDenialOp] != 1 {
				t.Errorf("denials %v, want one %s", rec2.denials, tt.wantDenialOp)
			}
		})
	}
}
