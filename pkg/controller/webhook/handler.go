package webhook

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// Path is where the handler is served on the controller's HTTPS server.
const Path = "/validate-ippool"

// maxReviewBytes bounds a request body: the API server's own request limit is 3 MiB, and an
// AdmissionReview of an UPDATE carries the object twice.
const maxReviewBytes = 7 << 20

// admittedTTL bounds how long an admitted spec is remembered when the cache never shows it (the
// write failed after admission, or the pool was deleted at once).
const admittedTTL = time.Minute

// PoolLister lists the IPPools of the informer cache; the generated lister satisfies it.
type PoolLister interface {
	List(selector labels.Selector) ([]*v1beta1.IPPool, error)
}

// Recorder counts answered requests; *metrics.Metrics satisfies it.
type Recorder interface {
	WebhookRequest(operation string, allowed bool)
}

// Handler serves IPPool admission reviews.
type Handler struct {
	pools    PoolLister
	recorder Recorder
	synced   func() bool
	now      func() time.Time

	// mu serializes CREATE and UPDATE decisions together with the bookkeeping of admitted specs.
	mu       sync.Mutex
	admitted map[string]admittedSpec
}

type admittedSpec struct {
	spec v1beta1.IPPoolSpec
	at   time.Time
}

// NewHandler returns a handler that judges against pools. synced reports whether the cache has
// synced; until it has, every request is denied (the API server retries per failurePolicy) rather
// than judged against an incomplete list.
func NewHandler(pools PoolLister, synced func() bool, recorder Recorder) *Handler {
	return &Handler{pools: pools, synced: synced, recorder: recorder, now: time.Now, admitted: map[string]admittedSpec{}}
}

// ServeHTTP answers one AdmissionReview.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "admission reviews are POSTed", http.StatusMethodNotAllowed)
		return
	}
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		http.Error(w, fmt.Sprintf("content type %q: want application/json", ct), http.StatusUnsupportedMediaType)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxReviewBytes))
	if err != nil {
		http.Error(w, fmt.Sprintf("read admission review: %v", err), http.StatusBadRequest)
		return
	}
	review := &admissionv1.AdmissionReview{}
	if err := json.Unmarshal(body, review); err != nil {
		http.Error(w, fmt.Sprintf("decode admission review: %v", err), http.StatusBadRequest)
		return
	}
	if review.Request == nil {
		http.Error(w, "admission review without a request", http.StatusBadRequest)
		return
	}
	req := review.Request
	resp := h.Review(req)
	h.recorder.WebhookRequest(string(req.Operation), resp.Allowed)
	logDecision(req, resp)

	out := admissionv1.AdmissionReview{TypeMeta: review.TypeMeta, Response: resp}
	if out.APIVersion == "" {
		out.APIVersion, out.Kind = admissionv1.SchemeGroupVersion.String(), "AdmissionReview"
	}
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(out); err != nil {
		klog.ErrorS(err, "Could not write an admission response", "ippool", req.Name, "operation", req.Operation)
	}
}

// Review decides one request. CREATE and UPDATE are serialized, see the package documentation.
func (h *Handler) Review(req *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
	if !h.synced() {
		return deny(req.UID, http.StatusServiceUnavailable, "ServiceUnavailable",
			"antrea-controller is starting: the IPPool cache has not synced yet, retry in a moment")
	}
	if req.Operation != admissionv1.Create && req.Operation != admissionv1.Update {
		resp := Decide(req, nil)
		if resp.Allowed && req.Operation == admissionv1.Delete && req.SubResource == "" {
			h.mu.Lock()
			delete(h.admitted, req.Name)
			h.mu.Unlock()
		}
		return resp
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	resp := Decide(req, func() ([]v1beta1.IPPool, error) { return h.others() })
	if resp.Allowed && req.SubResource == "" && !isDryRun(req) {
		if pool, err := decodePool(req.Object.Raw, "object"); err == nil && pool.Name != "" {
			h.admitted[pool.Name] = admittedSpec{spec: pool.Spec, at: h.now()}
		}
	}
	return resp
}

// others is the cache's pools with each admitted spec the cache does not show yet in place of the
// cached one (ranges can only be added, so the admitted spec is the larger one). Callers hold mu.
func (h *Handler) others() ([]v1beta1.IPPool, error) {
	cached, err := h.pools.List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list IPPools from the cache: %w", err)
	}
	now := h.now()
	out := make([]v1beta1.IPPool, 0, len(cached)+len(h.admitted))
	seen := map[string]bool{}
	for _, p := range cached {
		seen[p.Name] = true
		pool := *p
		if a, ok := h.admitted[p.Name]; ok {
			if specEqual(a.spec, p.Spec) || now.Sub(a.at) > admittedTTL {
				delete(h.admitted, p.Name)
			} else {
				pool.Spec = a.spec
			}
		}
		out = append(out, pool)
	}
	for name, a := range h.admitted {
		if seen[name] {
			continue
		}
		if now.Sub(a.at) > admittedTTL {
			delete(h.admitted, name)
			continue
		}
		pool := v1beta1.IPPool{Spec: a.spec}
		pool.Name = name
		out = append(out, pool)
	}
	return out, nil
}

func specEqual(a, b v1beta1.IPPoolSpec) bool {
	if a.SubnetInfo != b.SubnetInfo || len(a.IPRanges) != len(b.IPRanges) {
		return false
	}
	for i := range a.IPRanges {
		if a.IPRanges[i] != b.IPRanges[i] {
			return false
		}
	}
	return true
}

func isDryRun(req *admissionv1.AdmissionRequest) bool { return req.DryRun != nil && *req.DryRun }

func logDecision(req *admissionv1.AdmissionRequest, resp *admissionv1.AdmissionResponse) {
	if resp.Allowed {
		klog.V(2).InfoS("Admitted IPPool request", "ippool", req.Name, "operation", req.Operation, "user", req.UserInfo.Username)
		return
	}
	msg := ""
	if resp.Result != nil {
		msg = resp.Result.Message
	}
	klog.InfoS("Denied IPPool request", "ippool", req.Name, "operation", req.Operation, "user", req.UserInfo.Username,
		"message", msg)
}
