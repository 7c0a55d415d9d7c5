package webhook

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

func pool(name, gateway string, prefix int32, vlan int32, ranges ...v1beta1.IPRange) *v1beta1.IPPool {
	p := &v1beta1.IPPool{Spec: v1beta1.IPPoolSpec{IPRanges: ranges,
		SubnetInfo: v1beta1.SubnetInfo{Gateway: gateway, PrefixLength: prefix, VLAN: vlan}}}
	p.Name = name
	return p
}

func cidr(c string) v1beta1.IPRange    { return v1beta1.IPRange{CIDR: c} }
func span(s, e string) v1beta1.IPRange { return v1beta1.IPRange{Start: s, End: e} }
func withAllocation(p *v1beta1.IPPool) *v1beta1.IPPool {
	p = p.DeepCopy()
	p.Status.IPAddresses = []v1beta1.IPAddressState{{IPAddress: "10.0.0.5", Phase: v1beta1.IPAddressPhaseAllocated,
		Owner: v1beta1.IPAddressOwner{Pod: &v1beta1.PodOwner{Name: "p", Namespace: "ns", ContainerID: "c1"}}}}
	return p
}

func raw(t *testing.T, p *v1beta1.IPPool) []byte {
	t.Helper()
	if p == nil {
		return nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func request(t *testing.T, op admissionv1.Operation, newPool, oldPool *v1beta1.IPPool) *admissionv1.AdmissionRequest {
	name := ""
	if newPool != nil {
		name = newPool.Name
	} else if oldPool != nil {
		name = oldPool.Name
	}
	return &admissionv1.AdmissionRequest{
		UID: "uid-1", Operation: op, Name: name, Resource: IPPoolResource,
		Object: runtimeRaw(raw(t, newPool)), OldObject: runtimeRaw(raw(t, oldPool)),
	}
}

func list(pools ...*v1beta1.IPPool) func() ([]v1beta1.IPPool, error) {
	return func() ([]v1beta1.IPPool, error) {
		out := make([]v1beta1.IPPool, len(pools))
		for i, p := range pools {
			out[i] = *p
		}
		return out, nil
	}
}

var base = pool("a", "10.0.0.1", 24, 100, cidr("10.0.0.0/26"))

func TestDecide(t *testing.T) {
	other := pool("b", "10.0.0.1", 24, 100, cidr("10.0.0.128/26"))
	tests := []struct {
		name        string
		req         func(t *testing.T) *admissionv1.AdmissionRequest
		others      []*v1beta1.IPPool
		wantAllowed bool
		wantCode    int32
		wantMsg     []string
		wantWarning string
	}{
		{
			name:        "create of a valid pool is allowed",
			req:         func(t *testing.T) *admissionv1.AdmissionRequest { return request(t, admissionv1.Create, base, nil) },
			others:      []*v1beta1.IPPool{other},
			wantAllowed: true,
		},
		{
			name: "create with a range outside gateway/prefixLength is denied naming the range",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pool("a", "10.0.0.1", 24, 0, cidr("10.0.1.0/26")), nil)
			},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{`IPPool "a"`, "spec.ipRanges[0].cidr", "10.0.1.0/26", "not inside the subnet 10.0.0.0/24"},
		},
		{
			name: "create with ranges overlapping each other is denied naming both",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pool("a", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"), span("10.0.0.60", "10.0.0.70")), nil)
			},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{"spec.ipRanges[1]", "10.0.0.60-10.0.0.70", "overlaps spec.ipRanges[0] (10.0.0.0/26)"},
		},
		{
			name: "create overlapping another pool is denied naming the other pool and its range",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Create, pool("a", "10.0.0.1", 24, 0, span("10.0.0.130", "10.0.0.140")), nil)
			},
			others:   []*v1beta1.IPPool{other},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{"10.0.0.130-10.0.0.140", `overlaps 10.0.0.128/26 of IPPool "b" (spec.ipRanges[0])`},
		},
		{
			name: "update changing the gateway is denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Update, pool("a", "10.0.0.2", 24, 100, cidr("10.0.0.0/26")), base)
			},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{"spec.subnetInfo.gateway", "immutable (was 10.0.0.1)"},
		},
		{
			name: "update changing the prefix length is denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Update, pool("a", "10.0.0.1", 23, 100, cidr("10.0.0.0/26")), base)
			},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{"spec.subnetInfo.prefixLength", "immutable (was 24)"},
		},
		{
			name: "update adding a range is allowed",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Update, pool("a", "10.0.0.1", 24, 100, cidr("10.0.0.0/26"), cidr("10.0.0.64/27")), base)
			},
			others:      []*v1beta1.IPPool{other},
			wantAllowed: true,
		},
		{
			name: "update removing a range is denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Update, pool("a", "10.0.0.1", 24, 100, cidr("10.0.0.64/27")), base)
			},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{"range 10.0.0.0/26 (was spec.ipRanges[0]) was removed or changed"},
		},
		{
			name: "update changing a range is denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Update, pool("a", "10.0.0.1", 24, 100, cidr("10.0.0.0/25")), base)
			},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{"range 10.0.0.0/26", "removed or changed"},
		},
		{
			name: "update adding a range that overlaps another pool is denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Update, pool("a", "10.0.0.1", 24, 100, cidr("10.0.0.0/26"), cidr("10.0.0.128/27")), base)
			},
			others:   []*v1beta1.IPPool{other},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{"spec.ipRanges[1]", `overlaps 10.0.0.128/26 of IPPool "b"`},
		},
		{
			name: "update of a pool whose old range already overlapped another pool is allowed with a warning",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				old := pool("a", "10.0.0.1", 24, 100, cidr("10.0.0.128/27"))
				updated := old.DeepCopy()
				updated.Labels = map[string]string{"x": "y"}
				return request(t, admissionv1.Update, updated, old)
			},
			others:      []*v1beta1.IPPool{other},
			wantAllowed: true,
			wantWarning: `overlaps 10.0.0.128/26 of IPPool "b"`,
		},
		{
			name: "update changing the VLAN while addresses are allocated is denied",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Update, pool("a", "10.0.0.1", 24, 200, cidr("10.0.0.0/26")), withAllocation(base))
			},
			wantCode: http.StatusUnprocessableEntity,
			wantMsg:  []string{"spec.subnetInfo.vlan", "cannot change from 100 to 200 while 1 addresses are allocated"},
		},
		{
			name: "update changing the VLAN of an unused pool is allowed",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Update, pool("a", "10.0.0.1", 24, 200, cidr("10.0.0.0/26")), base)
			},
			wantAllowed: true,
		},
		{
			name: "delete of a pool with allocations is forbidden naming an owner",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Delete, nil, withAllocation(base))
			},
			wantCode: http.StatusForbidden,
			wantMsg:  []string{"1 allocated addresses", "10.0.0.5 held by Pod ns/p"},
		},
		{
			name:        "delete of an unused pool is allowed",
			req:         func(t *testing.T) *admissionv1.AdmissionRequest { return request(t, admissionv1.Delete, nil, base) },
			wantAllowed: true,
		},
		{
			name: "delete without the old object is denied as a bad request",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				return request(t, admissionv1.Delete, nil, nil)
			},
			wantCode: http.StatusBadRequest,
			wantMsg:  []string{"carries no oldObject"},
		},
		{
			name: "a status subresource write is allowed whatever it holds",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				r := request(t, admissionv1.Update, pool("a", "10.0.0.2", 24, 7, cidr("10.9.0.0/26")), base)
				r.SubResource = "status"
				return r
			},
			wantAllowed: true,
		},
		{
			name: "a request for another resource is denied pointing at the configuration",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				r := request(t, admissionv1.Create, base, nil)
				r.Resource = metav1.GroupVersionResource{Group: "", Version: "v1", Resource: "pods"}
				return r
			},
			wantCode: http.StatusBadRequest,
			wantMsg:  []string{"validates ippools.crd.antrea.io only, not pods."},
		},
		{
			name: "an object that does not decode is denied as a bad request",
			req: func(t *testing.T) *admissionv1.AdmissionRequest {
				r := request(t, admissionv1.Create, nil, nil)
				r.Object = runtimeRaw([]byte(`{"spec": {"ipRanges": "nope"}}`))
				return r
			},
			wantCode: http.StatusBadRequest,
			wantMsg:  []string{"decode IPPool from the admission request's object"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req(t)
			resp := Decide(req, list(tt.others...))
			if resp.UID != req.UID {
				t.Errorf("response UID %q, want %q", resp.UID, req.UID)
			}
			if resp.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tt.wantAllowed, resp.Result)
			}
			if tt.wantWarning != "" && !strings.Contains(strings.Join(resp.Warnings, "\n"), tt.wantWarning) {
				t.Errorf("warnings %q lack %q", resp.Warnings, tt.wantWarning)
			}
			if tt.wantAllowed {
				if resp.Result != nil {
					t.Errorf("allowed response carries a result %+v", resp.Result)
				}
				return
			}
			if resp.Result == nil {
				t.Fatal("denied response without a result")
			}
			if resp.Result.Code != tt.wantCode {
				t.Errorf("code %d, want %d", resp.Result.Code, tt.wantCode)
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(resp.Result.Message, want) {
					t.Errorf("message %q lacks %q", resp.Result.Message, want)
				}
			}
		})
	}
}

// fakeLister serves a fixed list, standing in for the informer cache.
type fakeLister struct{ pools []*v1beta1.IPPool }

func (f *fakeLister) List(labels.Selector) ([]*v1beta1.IPPool, error) { return f.pools, nil }

type countingRecorder struct{ requests, denials map[string]int }

func (c *countingRecorder) WebhookRequest(op string, allowed bool) {
	c.requests[op]++
	if !allowed {
		c.denials[op]++
	}
}

func newTestHandler(lister *fakeLister, now *time.Time) *Handler {
	h := NewHandler(lister, func() bool { return true }, &countingRecorder{map[string]int{}, map[string]int{}})
	h.now = func() time.Time { return *now }
	return h
}

func TestHandlerRemembersAdmittedPoolsUntilTheCacheHasThem(t *testing.T) {
	now := time.Unix(1000, 0)
	lister := &fakeLister{}
	first := pool("first", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"))
	second := pool("second", "10.0.0.1", 24, 0, cidr("10.0.0.32/27"))

	tests := []struct {
		name        string
		prepare     func(h *Handler)
		wantAllowed bool
	}{
		{
			name:        "an overlapping create right after an admitted one is denied though the cache is empty",
			prepare:     func(h *Handler) { h.Review(request(t, admissionv1.Create, first, nil)) },
			wantAllowed: false,
		},
		{
			name: "a dry-run create is not remembered",
			prepare: func(h *Handler) {
				r := request(t, admissionv1.Create, first, nil)
				r.DryRun = new(true)
				h.Review(r)
			},
			wantAllowed: true,
		},
		{
			name: "an admitted spec is forgotten after its TTL when the cache never shows it",
			prepare: func(h *Handler) {
				h.Review(request(t, admissionv1.Create, first, nil))
				h.now = func() time.Time { return now.Add(admittedTTL + time.Second) }
			},
			wantAllowed: true,
		},
		{
			name: "an admitted pool that is then deleted is forgotten",
			prepare: func(h *Handler) {
				h.Review(request(t, admissionv1.Create, first, nil))
				h.Review(request(t, admissionv1.Delete, nil, first))
			},
			wantAllowed: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := now
			h := newTestHandler(lister, &clock)
			tt.prepare(h)
			resp := h.Review(request(t, admissionv1.Create, second, nil))
			if resp.Allowed != tt.wantAllowed {
				t.Fatalf("allowed = %v, want %v (result %+v)", resp.Allowed, tt.wantAllowed, resp.Result)
			}
		})
	}
}

func TestHandlerPrefersTheAdmittedSpecOverAnOlderCachedOne(t *testing.T) {
	now := time.Unix(1000, 0)
	cached := pool("grow", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"))
	lister := &fakeLister{pools: []*v1beta1.IPPool{cached}}
	h := newTestHandler(lister, &now)
	grown := pool("grow", "10.0.0.1", 24, 0, cidr("10.0.0.0/26"), cidr("10.0.0.64/26"))
	if resp := h.Review(request(t, admissionv1.Update, grown, cached)); !resp.Allowed {
		t.Fatalf("growing update denied: %+v", resp.Result)
	}
	clash := pool("clash", "10.0.0.1", 24, 0, cidr("10.0.0.96/27"))
	if resp := h.Review(request(t, admissionv1.Create, clash, nil)); resp.Allowed {
		t.Fatal("a pool overlapping the just-added range was admitted")
	}
	lister.pools = []*v1beta1.IPPool{grown}
	if resp := h.Review(request(t, admissionv1.Create, clash, nil)); resp.Allowed {
		t.Fatal("a pool overlapping the cached range was admitted")
	}
	if _, remembered := h.admitted["grow"]; remembered {
		t.Error("the admitted spec is still remembered after the cache caught up")
	}
}

func TestHandlerDeniesUntilTheCacheHasSynced(t *testing.T) {
	h := NewHandler(&fakeLister{}, func() bool { return false }, &countingRecorder{map[string]int{}, map[string]int{}})
	resp := h.Review(request(t, admissionv1.Create, base, nil))
	if resp.Allowed || resp.Result.Code != http.StatusServiceUnavailable || !strings.Contains(resp.Result.Message, "not synced") {
		t.Fatalf("response %+v, want a 503 denial saying the cache has not synced", resp.Result)
	}
}

func runtimeRaw(b []byte) runtime.RawExtension { return runtime.RawExtension{Raw: b} }
