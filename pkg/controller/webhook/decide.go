package webhook

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/apis/crd/validation"
)

// IPPoolResource is the resource this webhook validates.
var IPPoolResource = metav1.GroupVersionResource{Group: v1beta1.GroupName, Version: "v1beta1", Resource: "ippools"}

// Verdict is the outcome of checking one IPPool operation: errors deny it, warnings are shown to
// the client either way.
type Verdict struct {
	Errors   field.ErrorList
	Warnings []string
}

// Allowed reports whether the operation may proceed.
func (v Verdict) Allowed() bool { return len(v.Errors) == 0 }

// CheckCreate judges a new pool against the pools that exist.
func CheckCreate(pool *v1beta1.IPPool, others []v1beta1.IPPool) Verdict {
	errs := validation.ValidateIPPool(pool)
	errs = append(errs, validation.ValidateNoOverlapWithOthers(pool, others)...)
	return Verdict{Errors: errs}
}

// CheckUpdate judges an update. Only the ranges the update adds are checked against other pools;
// an overlap of a range that was already there is reported as a warning.
func CheckUpdate(newPool, oldPool *v1beta1.IPPool, others []v1beta1.IPPool) Verdict {
	var v Verdict
	v.Errors = validation.ValidateIPPoolUpdate(newPool, oldPool)
	rangesPath := field.NewPath("spec", "ipRanges")
	for _, o := range validation.FindOverlaps(newPool, others) {
		if hadRange(oldPool, o.Range) {
			v.Warnings = append(v.Warnings, fmt.Sprintf("%s %s overlaps %s of IPPool %q (spec.ipRanges[%d]); the overlap predates this update",
				rangesPath.Index(o.Index), o.Range, o.Other, o.Pool, o.OtherIndex))
			continue
		}
		v.Errors = append(v.Errors, field.Invalid(rangesPath.Index(o.Index), o.Range.String(),
			fmt.Sprintf("overlaps %s of IPPool %q (spec.ipRanges[%d])", o.Other, o.Pool, o.OtherIndex)))
	}
	return v
}

// hadRange reports whether pool already covered exactly the addresses of r in one of its ranges.
func hadRange(pool *v1beta1.IPPool, r validation.Range) bool {
	for _, old := range pool.Spec.IPRanges {
		parsed, err := validation.ParseRange(old)
		if err == nil && parsed.Start == r.Start && parsed.End == r.End {
			return true
		}
	}
	return false
}

// CheckDelete judges the deletion of a pool: denied while it records allocations.
func CheckDelete(pool *v1beta1.IPPool) Verdict {
	return Verdict{Errors: validation.ValidateIPPoolDelete(pool)}
}

// Decide answers one admission request. others is called only for CREATE and UPDATE. The returned
// response carries the request's UID.
func Decide(req *admissionv1.AdmissionRequest, others func() ([]v1beta1.IPPool, error)) *admissionv1.AdmissionResponse {
	v, err := judge(req, others)
	if err != nil {
		return deny(req.UID, http.StatusBadRequest, metav1.StatusReasonBadRequest, err.Error())
	}
	if !v.Allowed() {
		code, reason := int32(http.StatusUnprocessableEntity), metav1.StatusReasonInvalid
		if req.Operation == admissionv1.Delete {
			code, reason = http.StatusForbidden, metav1.StatusReasonForbidden
		}
		resp := deny(req.UID, code, reason, denialMessage(req, v.Errors))
		resp.Warnings = v.Warnings
		return resp
	}
	return &admissionv1.AdmissionResponse{UID: req.UID, Allowed: true, Warnings: v.Warnings}
}

func judge(req *admissionv1.AdmissionRequest, others func() ([]v1beta1.IPPool, error)) (Verdict, error) {
	if req.SubResource != "" {
		// Status writes belong to the allocator; the rules are about the spec and deletion.
		return Verdict{}, nil
	}
	if req.Resource.Group != IPPoolResource.Group || req.Resource.Resource != IPPoolResource.Resource {
		return Verdict{}, fmt.Errorf("this webhook validates %s.%s only, not %s.%s: check the ValidatingWebhookConfiguration rules",
			IPPoolResource.Resource, IPPoolResource.Group, req.Resource.Resource, req.Resource.Group)
	}
	switch req.Operation {
	case admissionv1.Create:
		pool, err := decodePool(req.Object.Raw, "object")
		if err != nil {
			return Verdict{}, err
		}
		list, err := others()
		if err != nil {
			return Verdict{}, err
		}
		return CheckCreate(pool, list), nil
	case admissionv1.Update:
		pool, err := decodePool(req.Object.Raw, "object")
		if err != nil {
			return Verdict{}, err
		}
		old, err := decodePool(req.OldObject.Raw, "oldObject")
		if err != nil {
			return Verdict{}, err
		}
		list, err := others()
		if err != nil {
			return Verdict{}, err
		}
		return CheckUpdate(pool, old, list), nil
	case admissionv1.Delete:
		old, err := decodePool(req.OldObject.Raw, "oldObject")
		if err != nil {
			return Verdict{}, err
		}
		return CheckDelete(old), nil
	default:
		// CONNECT is not registered; nothing to judge.
		return Verdict{}, nil
	}
}

func decodePool(raw []byte, what string) (*v1beta1.IPPool, error) {
	if len(raw) == 0 {
		return nil, fmt.Errorf("the admission request carries no %s", what)
	}
	pool := &v1beta1.IPPool{}
	if err := json.Unmarshal(raw, pool); err != nil {
		return nil, fmt.Errorf("decode IPPool from the admission request's %s: %w", what, err)
	}
	return pool, nil
}

// denialMessage puts every error on one line; the API server prefixes it with the webhook's name.
func denialMessage(req *admissionv1.AdmissionRequest, errs field.ErrorList) string {
	parts := make([]string, len(errs))
	for i, e := range errs {
		parts[i] = e.Error()
	}
	return fmt.Sprintf("IPPool %q: %s", req.Name, strings.Join(parts, "; "))
}

func deny(uid types.UID, code int32, reason metav1.StatusReason, message string) *admissionv1.AdmissionResponse {
	return &admissionv1.AdmissionResponse{
		UID:     uid,
		Allowed: false,
		Result:  &metav1.Status{Status: metav1.StatusFailure, Code: code, Reason: reason, Message: message},
	}
}
