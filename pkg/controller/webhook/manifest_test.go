package webhook

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/controller/controllertest"
)

func readManifest(t *testing.T) *admissionregistrationv1.ValidatingWebhookConfiguration {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(teststack.RepoRoot(t), "build", "yamls", "webhook", "ippool-webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &admissionregistrationv1.ValidatingWebhookConfiguration{}
	if err := yaml.UnmarshalStrict(data, cfg); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	return cfg
}

func TestManifestMatchesTheServiceRegistration(t *testing.T) {
	manifest := readManifest(t)
	if manifest.Name != DefaultConfigurationName {
		t.Errorf("manifest name %q, the controller's default --webhook-name is %q", manifest.Name, DefaultConfigurationName)
	}
	desired := DesiredConfiguration(Registration{ConfigurationName: DefaultConfigurationName,
		Service: ServiceRef{Namespace: "kube-system", Name: "antrea-controller"}})
	if !webhooksEqual(manifest.Webhooks, desired.Webhooks) {
		t.Errorf("manifest webhooks %+v differ from what the controller creates %+v", manifest.Webhooks, desired.Webhooks)
	}
	s := manifest.Webhooks[0].ClientConfig.Service
	if s == nil || s.Path == nil || *s.Path != Path || s.Port == nil || *s.Port != 443 {
		t.Errorf("manifest service %+v, want path %s port 443", s, Path)
	}
	if len(manifest.Webhooks[0].ClientConfig.CABundle) != 0 {
		t.Error("the manifest carries a caBundle; the controller injects it")
	}
}

func TestRegisterInjectsTheCAIntoTheAppliedManifest(t *testing.T) {
	env := controllertest.Setup(t)
	manifest := readManifest(t)
	manifest.Name = env.Name("manifest")
	// Only this test's pools: the Service does not exist, and failurePolicy is Fail.
	manifest.Webhooks[0].ObjectSelector = env.LabelSelector()
	api := env.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	if _, err := api.Create(controllertest.Ctx(t), manifest, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := api.Delete(ctx, manifest.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete: %v", err)
		}
	})
	ca := []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
	reg := Registration{ConfigurationName: manifest.Name, Service: ServiceRef{Namespace: "kube-system", Name: "antrea-controller"}, CABundle: ca}
	if err := Register(controllertest.Ctx(t), env.Kube, reg); err != nil {
		t.Fatal(err)
	}
	got, err := api.Get(controllertest.Ctx(t), manifest.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := got.Webhooks[0]
	if !bytes.Equal(w.ClientConfig.CABundle, ca) {
		t.Errorf("caBundle %q, want the injected CA", w.ClientConfig.CABundle)
	}
	if w.ClientConfig.Service == nil || w.ClientConfig.Service.Name != "antrea-controller" || w.ObjectSelector.MatchLabels[controllertest.LabelKey] != env.RunID {
		t.Errorf("the applied configuration was changed beyond the caBundle: %+v", w)
	}
}
