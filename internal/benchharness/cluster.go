package benchharness

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/client/clientset/versioned"
)

// Cluster is the local cluster (hack/local-cluster.sh) as the benchmarks use it, with admin
// clients.
type Cluster struct {
	// Root is the repository root.
	Root string
	// Kubeconfig is the admin kubeconfig, which the benchmarks' agents use too.
	Kubeconfig string
	Config     *rest.Config
	Kube       kubernetes.Interface
	CRD        versioned.Interface
	NAD        nadclient.Interface
}

// apiTimeout bounds one API call of the harness.
const apiTimeout = 30 * time.Second

// LoadCluster reads the env file named by $PODVLAN_CLUSTER_ENV (default
// _output/local-cluster/env), builds admin clients and installs the project's CRDs.
func LoadCluster(ctx context.Context) (*Cluster, error) {
	root, err := teststack.FindRepoRoot()
	if err != nil {
		return nil, err
	}
	env, err := teststack.LoadLocalEnv()
	if err != nil {
		return nil, fmt.Errorf("local cluster env file (start it with hack/local-cluster.sh up): %w", err)
	}
	kubeconfig := env.Kubeconfig
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kubeconfig, err)
	}
	// The harness creates thousands of objects; client-side throttling would measure itself.
	cfg.QPS, cfg.Burst = 2000, 4000
	c := &Cluster{Root: root, Kubeconfig: kubeconfig, Config: cfg}
	if c.Kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("kubernetes client: %w", err)
	}
	if c.CRD, err = versioned.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("IPPool client: %w", err)
	}
	if c.NAD, err = nadclient.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("NetworkAttachmentDefinition client: %w", err)
	}
	crdCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := teststack.ApplyCRDs(crdCtx, cfg, filepath.Join(root, "build", "yamls", "crds")); err != nil {
		return nil, err
	}
	return c, nil
}

// UniqueName returns prefix followed by 6 random hex digits: names of namespaces, links and
// objects are shared with every test and benchmark on the machine.
func UniqueName(prefix string) string {
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("random name: %v", err))
	}
	return prefix + hex.EncodeToString(b)
}

// CreateNamespace creates a namespace with a unique name and its default ServiceAccount (no
// controller manager makes one).
func (c *Cluster) CreateNamespace(ctx context.Context, prefix string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, apiTimeout)
	defer cancel()
	name := UniqueName(prefix)
	if _, err := c.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}},
		metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create namespace %s: %w", name, err)
	}
	if _, err := c.Kube.CoreV1().ServiceAccounts(name).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"}, AutomountServiceAccountToken: new(false)}, metav1.CreateOptions{}); err != nil {
		return "", fmt.Errorf("create service account default in %s: %w", name, err)
	}
	return name, nil
}

// DeleteNamespace removes a namespace made by CreateNamespace with everything in it: Pods are
// deleted without grace (no kubelet runs for bench Nodes), and the namespace is finalized by hand
// (no namespace controller runs).
func (c *Cluster) DeleteNamespace(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	zero := int64(0)
	if err := c.Kube.CoreV1().Pods(name).DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero},
		metav1.ListOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete Pods in %s: %w", name, err)
	}
	nads, err := c.NAD.K8sCniCncfIoV1().NetworkAttachmentDefinitions(name).List(ctx, metav1.ListOptions{})
	if err == nil {
		for _, n := range nads.Items {
			_ = c.NAD.K8sCniCncfIoV1().NetworkAttachmentDefinitions(name).Delete(ctx, n.Name, metav1.DeleteOptions{})
		}
	}
	if err := c.Kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	ns, err := c.Kube.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", name, err)
	}
	ns.Spec.Finalizers = nil
	if _, err := c.Kube.CoreV1().Namespaces().Finalize(ctx, ns, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: %w", name, err)
	}
	return nil
}
