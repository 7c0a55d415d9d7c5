package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
)

// WebhookName is the name of the webhook inside the configuration; the API server prefixes denial
// messages with it.
const WebhookName = "ippool.crd.antrea.io"

// DefaultConfigurationName is the ValidatingWebhookConfiguration of build/yamls/webhook.
const DefaultConfigurationName = "antrea-controller-ippool"

// defaultTimeoutSeconds leaves the API server time to retry within its own request deadline.
const defaultTimeoutSeconds = 10

// ServiceRef is the Service in front of the controller.
type ServiceRef struct {
	Namespace string
	Name      string
	// Port is the Service port; 443 when 0.
	Port int32
}

// Registration says how the API server reaches the webhook.
type Registration struct {
	// ConfigurationName is the ValidatingWebhookConfiguration's name.
	ConfigurationName string
	// URL, when set, is written as clientConfig.url and the controller owns the whole configuration.
	URL string
	// Service is used when URL is empty: the configuration is the one applied from
	// build/yamls/webhook and only its caBundle is injected (it is created when missing).
	Service ServiceRef
	// CABundle is the PEM the API server must trust; when empty the caBundle is left alone (a
	// certificate managed by someone else, such as cert-manager's CA injector).
	CABundle []byte
	// ObjectSelector restricts the webhook to labelled IPPools; nil matches all. Tests use it so
	// that their webhook does not judge pools of other tests sharing the cluster.
	ObjectSelector *metav1.LabelSelector
}

// DesiredConfiguration is the configuration Register creates: one webhook for CREATE, UPDATE and
// DELETE of ippools (not their status subresource), failurePolicy Fail, no side effects.
func DesiredConfiguration(r Registration) *admissionregistrationv1.ValidatingWebhookConfiguration {
	fail := admissionregistrationv1.Fail
	none := admissionregistrationv1.SideEffectClassNone
	equivalent := admissionregistrationv1.Equivalent
	scope := admissionregistrationv1.ClusterScope
	timeout := int32(defaultTimeoutSeconds)
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{
			Name:   r.ConfigurationName,
			Labels: map[string]string{"app": "antrea", "component": "antrea-controller"},
		},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name:         WebhookName,
			ClientConfig: clientConfig(r),
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{
					admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete,
				},
				Rule: admissionregistrationv1.Rule{
					APIGroups:   []string{v1beta1.GroupName},
					APIVersions: []string{"v1beta1"},
					Resources:   []string{"ippools"},
					Scope:       &scope,
				},
			}},
			FailurePolicy:           &fail,
			MatchPolicy:             &equivalent,
			ObjectSelector:          r.ObjectSelector,
			SideEffects:             &none,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

func clientConfig(r Registration) admissionregistrationv1.WebhookClientConfig {
	cc := admissionregistrationv1.WebhookClientConfig{CABundle: r.CABundle}
	if r.URL != "" {
		url := r.URL
		cc.URL = &url
		return cc
	}
	port := r.Service.Port
	if port == 0 {
		port = 443
	}
	path := Path
	cc.Service = &admissionregistrationv1.ServiceReference{Namespace: r.Service.Namespace, Name: r.Service.Name, Path: &path, Port: &port}
	return cc
}

// Reconcile returns existing updated for r and whether anything changed. With a URL the webhooks
// become the desired ones (labels and annotations of existing are kept); with a Service only the
// caBundle of every webhook is set, so that what an administrator applied stays as applied.
func Reconcile(existing *admissionregistrationv1.ValidatingWebhookConfiguration, r Registration) (*admissionregistrationv1.ValidatingWebhookConfiguration, bool) {
	updated := existing.DeepCopy()
	if r.URL != "" {
		desired := DesiredConfiguration(r)
		updated.Webhooks = desired.Webhooks
		return updated, !webhooksEqual(existing.Webhooks, updated.Webhooks)
	}
	if len(r.CABundle) == 0 {
		return updated, false
	}
	changed := false
	for i := range updated.Webhooks {
		if !bytes.Equal(updated.Webhooks[i].ClientConfig.CABundle, r.CABundle) {
			updated.Webhooks[i].ClientConfig.CABundle = r.CABundle
			changed = true
		}
	}
	return updated, changed
}

func webhooksEqual(a, b []admissionregistrationv1.ValidatingWebhook) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		// The API server defaults fields (namespaceSelector, ...); compare what we set.
		x, y := a[i], b[i]
		if x.Name != y.Name || !bytes.Equal(x.ClientConfig.CABundle, y.ClientConfig.CABundle) ||
			ptrString(x.ClientConfig.URL) != ptrString(y.ClientConfig.URL) ||
			(x.ClientConfig.Service == nil) != (y.ClientConfig.Service == nil) ||
			!equality.Semantic.DeepEqual(x.Rules, y.Rules) ||
			!equality.Semantic.DeepEqual(selectorOrEmpty(x.ObjectSelector), selectorOrEmpty(y.ObjectSelector)) ||
			ptrPolicy(x.FailurePolicy) != ptrPolicy(y.FailurePolicy) {
			return false
		}
	}
	return true
}

// selectorOrEmpty treats nil like {}: the API server defaults an unset objectSelector to {}.
func selectorOrEmpty(s *metav1.LabelSelector) *metav1.LabelSelector {
	if s == nil {
		return &metav1.LabelSelector{}
	}
	return s
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func ptrPolicy(p *admissionregistrationv1.FailurePolicyType) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

// Register creates the configuration when it is missing and otherwise reconciles it (see
// Reconcile), retrying on write conflicts.
func Register(ctx context.Context, client kubernetes.Interface, r Registration) error {
	if r.ConfigurationName == "" {
		return errors.New("register webhook: no ValidatingWebhookConfiguration name")
	}
	if r.URL == "" && (r.Service.Namespace == "" || r.Service.Name == "") {
		return errors.New("register webhook: neither a URL nor a Service namespace/name")
	}
	api := client.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		existing, err := api.Get(ctx, r.ConfigurationName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = api.Create(ctx, DesiredConfiguration(r), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				// Created by someone else meanwhile: reconcile that one on the next attempt.
				return apierrors.NewConflict(admissionregistrationv1.Resource("validatingwebhookconfigurations"), r.ConfigurationName, err)
			}
			if err == nil {
				klog.InfoS("Created the IPPool webhook configuration", "configuration", r.ConfigurationName, "url", r.URL,
					"service", klog.KRef(r.Service.Namespace, r.Service.Name))
			}
			return err
		}
		if err != nil {
			return err
		}
		updated, changed := Reconcile(existing, r)
		if !changed {
			return nil
		}
		if _, err := api.Update(ctx, updated, metav1.UpdateOptions{}); err != nil {
			return err
		}
		klog.InfoS("Updated the IPPool webhook configuration", "configuration", r.ConfigurationName, "url", r.URL,
			"caBundleInjected", len(r.CABundle) > 0)
		return nil
	})
	if err != nil {
		return fmt.Errorf("register webhook configuration %s: %w", r.ConfigurationName, err)
	}
	return nil
}
