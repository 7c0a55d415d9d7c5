// Package webhook is the validating admission webhook for IPPools (crd.antrea.io/v1beta1) and its
// registration.
//
// Rules (the contract's section 5; the pure checks live in pkg/apis/crd/validation):
//   - CREATE: every range lies inside gateway/prefixLength; ranges of the pool do not overlap each
//     other nor any range of another IPPool (the message names both ranges and the other pool).
//   - UPDATE: the same, plus gateway and prefixLength are immutable, ranges may be added but not
//     removed or changed, and the VLAN is immutable while status.ipAddresses is not empty. Only
//     ranges added by the update are checked against other pools: an overlap that predates the
//     webhook must not freeze a pool forever (its ranges cannot be removed), so it gives a warning.
//   - DELETE: denied while status.ipAddresses records any address.
//
// Status writes (the ippools/status subresource, written by agents when they allocate) are not
// matched by the registration and, should a configuration send them anyway, are allowed.
//
// The other pools come from an informer cache. Two pools written at the same moment could both be
// checked against a cache that has neither yet, so admissions of CREATE and UPDATE are serialized
// and each admitted spec is remembered until the cache shows it (or for a minute at most); this
// closes the race for the single controller replica the Deployment runs. A just-deleted pool stays
// in the cache for the moment the watch takes, so an overlapping pool created right after it may be
// denied once; retrying succeeds.
//
// The handler serves admission.k8s.io/v1 AdmissionReview at Path over the controller's HTTPS
// server. Register creates or updates the ValidatingWebhookConfiguration: with a Service reference
// (production; build/yamls/webhook) it only injects the CA bundle into the configuration as
// applied, with a URL (a local API server reaching the controller at 127.0.0.1) it writes the whole
// configuration. failurePolicy is Fail: while the controller is down IPPools cannot be written,
// which is safer than letting overlapping pools in.
package webhook
