package webhook

import (
	"bytes"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDesiredConfiguration(t *testing.T) {
	tests := []struct {
		name  string
		reg   Registration
		check func(t *testing.T, w admissionregistrationv1.ValidatingWebhook)
	}{
		{
			name: "a URL registration points clientConfig.url at the webhook",
			reg:  Registration{ConfigurationName: "c", URL: "https://127.0.0.1:1234/validate-ippool", CABundle: []byte("ca")},
			check: func(t *testing.T, w admissionregistrationv1.ValidatingWebhook) {
				if w.ClientConfig.URL == nil || *w.ClientConfig.URL != "https://127.0.0.1:1234/validate-ippool" || w.ClientConfig.Service != nil {
					t.Errorf("clientConfig %+v, want the URL only", w.ClientConfig)
				}
			},
		},
		{
			name: "a Service registration names the Service, port 443 and the webhook path",
			reg:  Registration{ConfigurationName: "c", Service: ServiceRef{Namespace: "kube-system", Name: "antrea-controller"}},
			check: func(t *testing.T, w admissionregistrationv1.ValidatingWebhook) {
				s := w.ClientConfig.Service
				if s == nil || s.Namespace != "kube-system" || s.Name != "antrea-controller" || *s.Port != 443 || *s.Path != Path {
					t.Errorf("service %+v, want kube-system/antrea-controller:443%s", s, Path)
				}
			},
		},
		{
			name: "failures deny IPPool writes, for CREATE, UPDATE and DELETE of ippools only",
			reg:  Registration{ConfigurationName: "c", URL: "https://x/validate-ippool"},
			check: func(t *testing.T, w admissionregistrationv1.ValidatingWebhook) {
				if *w.FailurePolicy != admissionregistrationv1.Fail || *w.SideEffects != admissionregistrationv1.SideEffectClassNone {
					t.Errorf("failurePolicy %v sideEffects %v", *w.FailurePolicy, *w.SideEffects)
				}
				if len(w.Rules) != 1 || len(w.Rules[0].Resources) != 1 || w.Rules[0].Resources[0] != "ippools" ||
					len(w.Rules[0].Operations) != 3 || w.Rules[0].APIGroups[0] != "crd.antrea.io" {
					t.Errorf("rules %+v", w.Rules)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DesiredConfiguration(tt.reg)
			if cfg.Name != tt.reg.ConfigurationName || len(cfg.Webhooks) != 1 || cfg.Webhooks[0].Name != WebhookName {
				t.Fatalf("configuration %+v", cfg)
			}
			if !bytes.Equal(cfg.Webhooks[0].ClientConfig.CABundle, tt.reg.CABundle) {
				t.Errorf("caBundle %q, want %q", cfg.Webhooks[0].ClientConfig.CABundle, tt.reg.CABundle)
			}
			tt.check(t, cfg.Webhooks[0])
		})
	}
}

func TestReconcile(t *testing.T) {
	applied := DesiredConfiguration(Registration{ConfigurationName: "c", Service: ServiceRef{Namespace: "kube-system", Name: "antrea-controller"}})
	applied.Labels["owner"] = "admin"
	timeout := int32(3)
	applied.Webhooks[0].TimeoutSeconds = &timeout // an administrator's change

	tests := []struct {
		name        string
		existing    *admissionregistrationv1.ValidatingWebhookConfiguration
		reg         Registration
		wantChanged bool
		check       func(t *testing.T, got *admissionregistrationv1.ValidatingWebhookConfiguration)
	}{
		{
			name:        "service mode injects the CA and keeps everything the administrator applied",
			existing:    applied,
			reg:         Registration{ConfigurationName: "c", Service: ServiceRef{Namespace: "kube-system", Name: "antrea-controller"}, CABundle: []byte("ca")},
			wantChanged: true,
			check: func(t *testing.T, got *admissionregistrationv1.ValidatingWebhookConfiguration) {
				if string(got.Webhooks[0].ClientConfig.CABundle) != "ca" || *got.Webhooks[0].TimeoutSeconds != 3 || got.Labels["owner"] != "admin" {
					t.Errorf("got %+v", got.Webhooks[0])
				}
			},
		},
		{
			name: "service mode with the CA already there changes nothing",
			existing: func() *admissionregistrationv1.ValidatingWebhookConfiguration {
				c := applied.DeepCopy()
				c.Webhooks[0].ClientConfig.CABundle = []byte("ca")
				return c
			}(),
			reg: Registration{ConfigurationName: "c", Service: ServiceRef{Namespace: "kube-system", Name: "antrea-controller"}, CABundle: []byte("ca")},
		},
		{
			name:     "service mode without a CA (certificate managed elsewhere) leaves the caBundle alone",
			existing: applied,
			reg:      Registration{ConfigurationName: "c", Service: ServiceRef{Namespace: "kube-system", Name: "antrea-controller"}},
		},
		{
			name:        "URL mode rewrites the webhook with the URL and CA",
			existing:    applied,
			reg:         Registration{ConfigurationName: "c", URL: "https://127.0.0.1:9/validate-ippool", CABundle: []byte("ca"), ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}},
			wantChanged: true,
			check: func(t *testing.T, got *admissionregistrationv1.ValidatingWebhookConfiguration) {
				w := got.Webhooks[0]
				if w.ClientConfig.URL == nil || *w.ClientConfig.URL != "https://127.0.0.1:9/validate-ippool" || w.ClientConfig.Service != nil ||
					string(w.ClientConfig.CABundle) != "ca" || w.ObjectSelector.MatchLabels["a"] != "b" {
					t.Errorf("webhook %+v", w)
				}
				if got.Labels["owner"] != "admin" {
					t.Errorf("labels %v lost", got.Labels)
				}
			},
		},
		{
			name:     "URL mode with the configuration already as desired changes nothing",
			existing: DesiredConfiguration(Registration{ConfigurationName: "c", URL: "https://127.0.0.1:9/validate-ippool", CABundle: []byte("ca")}),
			reg:      Registration{ConfigurationName: "c", URL: "https://127.0.0.1:9/validate-ippool", CABundle: []byte("ca")},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.existing.DeepCopy()
			got, changed := Reconcile(tt.existing, tt.reg)
			if changed != tt.wantChanged {
				t.Fatalf("changed = %v, want %v", changed, tt.wantChanged)
			}
			if tt.check != nil {
				tt.check(t, got)
			}
			if !bytes.Equal(before.Webhooks[0].ClientConfig.CABundle, tt.existing.Webhooks[0].ClientConfig.CABundle) {
				t.Error("Reconcile modified its input")
			}
		})
	}
}
