package podvlanctl

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"

	nadv1 "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/apis/k8s.cni.cncf.io/v1"
	nadclient "github.com/k8snetworkplumbingwg/network-attachment-definition-client/pkg/client/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	ippoolclient "github.com/podvlan/podvlan/pkg/client/clientset/versioned"
	"github.com/podvlan/podvlan/pkg/cni/netconf"
	"github.com/podvlan/podvlan/pkg/cni/selection"
	"github.com/podvlan/podvlan/pkg/config"
)

// Defaults of the agent's and controller's endpoints, as the manifests set them.
const (
	metricsFlag           = "--metrics-bind-address"
	defaultMetricsAddress = "127.0.0.1:10351"
	controllerSelector    = "app=antrea,component=antrea-controller"
	controllerPortName    = "api"
	// probeTimeout bounds the direct TLS connection to the controller.
	probeTimeout = 3 * time.Second
)

// Client fetches what the views need, read-only.
type Client struct {
	Kube  kubernetes.Interface
	Pools ippoolclient.Interface
	NADs  nadclient.Interface
	// Holders reads pool holders; BlockHolders on Pools when nil.
	Holders HolderSource
	// FetchMetrics reads the agent Pod's metrics at port; through the API server's Pod proxy when
	// nil.
	FetchMetrics func(ctx context.Context, pod *corev1.Pod, port string) (string, error)
	// ProbeTLS returns the certificate chain served at address; a direct TLS connection when nil.
	ProbeTLS func(ctx context.Context, address string) ([]*x509.Certificate, error)
	// Now is the clock of the certificate checks; time.Now when nil.
	Now func() time.Time
}

func (c *Client) holders() HolderSource {
	if c.Holders == nil {
		return BlockHolders{Client: c.Pools}
	}
	return c.Holders
}

// Pod returns the view of Pod namespace/name.
func (c *Client) Pod(ctx context.Context, namespace, name string) (PodReport, error) {
	pod, err := c.Kube.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return PodReport{}, fmt.Errorf("get Pod %s/%s: %w", namespace, name, err)
	}
	in := PodInput{Pod: pod, NADs: map[string]*nadv1.NetworkAttachmentDefinition{}, Pools: map[string]*v1beta1.IPPool{}, Holders: map[string][]Holder{}}
	selected, _ := selection.Parse(pod.Namespace, pod.Annotations[selection.AnnotationKey])
	for _, sel := range selected {
		if _, done := in.NADs[sel.NetworkKey()]; done {
			continue
		}
		nad, err := c.NADs.K8sCniCncfIoV1().NetworkAttachmentDefinitions(sel.Namespace).Get(ctx, sel.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			return PodReport{}, fmt.Errorf("get NetworkAttachmentDefinition %s: %w", sel.NetworkKey(), err)
		}
		in.NADs[sel.NetworkKey()] = nad
		network, ours, err := netconf.ParseNAD(nad.Namespace, nad.Name, nad.Spec.Config)
		if err != nil || !ours || network.IPAM == nil {
			continue
		}
		for _, poolName := range network.IPAM.IPPools {
			if err := c.fetchPool(ctx, poolName, in.Pools, in.Holders); err != nil {
				return PodReport{}, err
			}
		}
	}
	in.Events, err = c.eventsAbout(ctx, pod.Namespace, "Pod", pod.Name, string(pod.UID))
	if err != nil {
		return PodReport{}, err
	}
	return BuildPodReport(in), nil
}

// fetchPool adds IPPool name and its holders to the maps, once; a missing pool is left out.
func (c *Client) fetchPool(ctx context.Context, name string, pools map[string]*v1beta1.IPPool, holders map[string][]Holder) error {
	if _, done := pools[name]; done {
		return nil
	}
	p, err := c.Pools.CrdV1beta1().IPPools().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get IPPool %s: %w", name, err)
	}
	pools[name] = p
	if holders[name], err = c.holders().Holders(ctx, p); err != nil {
		return fmt.Errorf("read holders of IPPool %s: %w", name, err)
	}
	return nil
}

// eventsAbout lists the Events in namespace about the object kind/name (and uid when set).
func (c *Client) eventsAbout(ctx context.Context, namespace, kind, name, uid string) ([]corev1.Event, error) {
	sel := fields.Set{"involvedObject.kind": kind, "involvedObject.name": name}.AsSelector().String()
	list, err := c.Kube.CoreV1().Events(namespace).List(ctx, metav1.ListOptions{FieldSelector: sel})
	if err != nil {
		return nil, fmt.Errorf("list Events about %s %s in namespace %s: %w", kind, name, namespace, err)
	}
	// The selector again, for API servers (and fakes) that ignore it, plus the UID.
	events := slices.DeleteFunc(list.Items, func(e corev1.Event) bool {
		return e.InvolvedObject.Kind != kind || e.InvolvedObject.Name != name || uid != "" && e.InvolvedObject.UID != "" && string(e.InvolvedObject.UID) != uid
	})
	return events, nil
}

// Pool returns the view of IPPool name.
func (c *Client) Pool(ctx context.Context, name string) (PoolReport, error) {
	p, err := c.Pools.CrdV1beta1().IPPools().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return PoolReport{}, fmt.Errorf("get IPPool %s: %w", name, err)
	}
	return c.poolReport(ctx, p, podCache{})
}

// AllPools returns the views of every IPPool, sorted by name.
func (c *Client) AllPools(ctx context.Context) ([]PoolReport, error) {
	list, err := c.Pools.CrdV1beta1().IPPools().List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list IPPools: %w", err)
	}
	slices.SortFunc(list.Items, func(a, b v1beta1.IPPool) int { return strings.Compare(a.Name, b.Name) })
	reports := []PoolReport{}
	cache := podCache{}
	for i := range list.Items {
		r, err := c.poolReport(ctx, &list.Items[i], cache)
		if err != nil {
			return nil, err
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// podCache holds the Pods of the namespaces listed so far; a nil entry means the namespace could
// not be listed.
type podCache map[string]map[string]*corev1.Pod

func (c *Client) poolReport(ctx context.Context, p *v1beta1.IPPool, cache podCache) (PoolReport, error) {
	holders, err := c.holders().Holders(ctx, p)
	if err != nil {
		return PoolReport{}, fmt.Errorf("read holders of IPPool %s: %w", p.Name, err)
	}
	pods := map[string]*corev1.Pod{}
	for _, h := range holders {
		if h.Namespace == "" {
			continue
		}
		nsPods, listed := cache[h.Namespace]
		if !listed {
			nsPods = c.listPods(ctx, h.Namespace)
			cache[h.Namespace] = nsPods
		}
		if nsPods == nil {
			// Without the Pods of every holding namespace, leaks cannot be told.
			pods = nil
			break
		}
		for k, v := range nsPods {
			pods[k] = v
		}
	}
	return BuildPoolReport(PoolInput{Pool: p, Holders: holders, Pods: pods}), nil
}

// listPods returns the Pods of namespace by "namespace/name", nil when they cannot be listed.
func (c *Client) listPods(ctx context.Context, namespace string) map[string]*corev1.Pod {
	list, err := c.Kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil
	}
	pods := make(map[string]*corev1.Pod, len(list.Items))
	for i := range list.Items {
		pods[namespace+"/"+list.Items[i].Name] = &list.Items[i]
	}
	return pods
}

// Node returns the view of Node name.
func (c *Client) Node(ctx context.Context, name string) (NodeReport, error) {
	node, err := c.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return NodeReport{}, fmt.Errorf("get Node %s: %w", name, err)
	}
	in := NodeInput{Node: node, Holders: map[string][]Holder{}}
	onNode := fields.OneTermEqualSelector("spec.nodeName", name).String()
	agents, err := c.Kube.CoreV1().Pods(SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: AgentSelector, FieldSelector: onNode})
	if err != nil {
		return NodeReport{}, fmt.Errorf("list antrea-agent Pods on %s: %w", name, err)
	}
	in.AgentPods = slices.DeleteFunc(agents.Items, func(p corev1.Pod) bool { return p.Spec.NodeName != name })
	in.AgentConfig, in.ConfigProblem = c.agentConfig(ctx)
	// What cannot be read makes the report poorer, and says so, rather than failing it.
	if in.Events, err = c.eventsAbout(ctx, metav1.NamespaceDefault, "Node", name, ""); err != nil {
		in.Problems = append(in.Problems, err.Error()+" (needs list on events in namespace default)")
	}
	if pods, err := c.Kube.CoreV1().Pods(metav1.NamespaceAll).List(ctx, metav1.ListOptions{FieldSelector: onNode}); err != nil {
		in.Problems = append(in.Problems, fmt.Sprintf("list the Pods on %s (needs list on pods in every namespace): %v", name, err))
	} else {
		in.Pods = slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool { return p.Spec.NodeName != name })
	}
	if pools, err := c.Pools.CrdV1beta1().IPPools().List(ctx, metav1.ListOptions{}); err == nil {
		for i := range pools.Items {
			if hs, err := c.holders().Holders(ctx, &pools.Items[i]); err == nil {
				in.Holders[pools.Items[i].Name] = hs
			}
		}
	}
	in.Metrics, in.MetricsProblem = c.agentMetrics(ctx, in.AgentPods)
	return BuildNodeReport(in), nil
}

// agentConfig reads antrea-agent.conf from the ConfigMap, or says why it cannot.
func (c *Client) agentConfig(ctx context.Context) (*config.Agent, string) {
	cm, err := c.Kube.CoreV1().ConfigMaps(SystemNamespace).Get(ctx, ConfigMapName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Sprintf("cannot read ConfigMap %s/%s (bridge and uplinks unknown): %v", SystemNamespace, ConfigMapName, err)
	}
	agent, err := config.LoadAgent([]byte(cm.Data[config.AgentFileName]))
	if err != nil {
		return nil, fmt.Sprintf("ConfigMap %s/%s: %v", SystemNamespace, ConfigMapName, err)
	}
	return agent, ""
}

// agentMetrics reads the metrics of the newest running agent Pod, or says why it cannot.
func (c *Client) agentMetrics(ctx context.Context, agents []corev1.Pod) ([]Sample, string) {
	i := slices.IndexFunc(agents, func(p corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if i < 0 {
		return nil, "no running agent Pod"
	}
	pod := &agents[i]
	address := MetricsAddress(pod)
	if address == "" {
		return nil, "the agent serves no metrics (" + metricsFlag + " is empty)"
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, fmt.Sprintf("%s=%q: %v", metricsFlag, address, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		return nil, fmt.Sprintf("the agent serves them on %s only (%s), which the API server cannot reach; bind it to the Node's address to see the bridge and uplink gauges here", address, metricsFlag)
	}
	fetch := c.FetchMetrics
	if fetch == nil {
		fetch = c.proxyMetrics
	}
	text, err := fetch(ctx, pod, port)
	if err != nil {
		return nil, fmt.Sprintf("read through the API server's Pod proxy (needs get on pods/proxy in kube-system): %v", err)
	}
	samples, err := ParseMetrics(text)
	if err != nil {
		return nil, err.Error()
	}
	return samples, ""
}

// MetricsAddress is the address the agent container serves metrics on, from its arguments.
func MetricsAddress(pod *corev1.Pod) string {
	for _, ctr := range pod.Spec.Containers {
		if ctr.Name != AgentComponent {
			continue
		}
		args := slices.Concat(ctr.Command, ctr.Args)
		for i, a := range args {
			if v, ok := strings.CutPrefix(a, metricsFlag+"="); ok {
				return v
			}
			if a == metricsFlag && i+1 < len(args) {
				return args[i+1]
			}
		}
	}
	return defaultMetricsAddress
}

// proxyMetrics reads /metrics of the Pod through the API server's Pod proxy.
func (c *Client) proxyMetrics(ctx context.Context, pod *corev1.Pod, port string) (string, error) {
	data, err := c.Kube.CoreV1().Pods(pod.Namespace).ProxyGet("http", pod.Name, port, "metrics", nil).DoRaw(ctx)
	if err != nil {
		return "", err
	}
	return string(data), nil
}

// Doctor checks the installation.
func (c *Client) Doctor(ctx context.Context) []Check {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	in := DoctorInput{Resources: map[string]bool{}, Now: now()}
	for _, gv := range []string{"crd.antrea.io/v1beta1", "k8s.cni.cncf.io/v1"} {
		list, err := c.Kube.Discovery().ServerResourcesForGroupVersion(gv)
		if err != nil {
			if !apierrors.IsNotFound(err) {
				in.DiscoveryProblem = err
			}
			continue
		}
		for _, r := range list.APIResources {
			in.Resources[gv+"/"+r.Name] = true
		}
	}
	core, apps := c.Kube.CoreV1(), c.Kube.AppsV1()
	in.ConfigMap = fetched(core.ConfigMaps(SystemNamespace).Get(ctx, ConfigMapName, metav1.GetOptions{}))
	in.DaemonSet = fetched(apps.DaemonSets(SystemNamespace).Get(ctx, AgentDaemonSet, metav1.GetOptions{}))
	in.Deployment = fetched(apps.Deployments(SystemNamespace).Get(ctx, ControllerName, metav1.GetOptions{}))
	in.Webhook = fetched(c.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, WebhookConfigName, metav1.GetOptions{}))
	if nodes, err := core.Nodes().List(ctx, metav1.ListOptions{}); err != nil {
		in.NodesProblem = err
	} else {
		in.Nodes = nodes.Items
	}
	if pods, err := core.Pods(SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: AgentSelector}); err != nil {
		in.AgentPodsProblem = err
	} else {
		in.AgentPods = pods.Items
	}
	in.ServingCert, in.ServingCertProblem = c.servingCert(ctx)
	if pools, err := c.Pools.CrdV1beta1().IPPools().List(ctx, metav1.ListOptions{}); err != nil {
		in.PoolsProblem = err
	} else {
		in.Pools, in.Holders = pools.Items, map[string][]Holder{}
		for i := range pools.Items {
			hs, err := c.holders().Holders(ctx, &pools.Items[i])
			if err != nil {
				in.PoolsProblem = fmt.Errorf("read holders of IPPool %s: %w", pools.Items[i].Name, err)
				break
			}
			in.Holders[pools.Items[i].Name] = hs
		}
	}
	return RunChecks(in)
}

func fetched[T any](obj *T, err error) Fetched[T] {
	switch {
	case err == nil:
		return Fetched[T]{Object: obj}
	case apierrors.IsNotFound(err):
		return Fetched[T]{NotFound: true, Err: err}
	default:
		return Fetched[T]{Err: err}
	}
}

// servingCert connects to a ready controller Pod and returns the certificate chain it serves.
func (c *Client) servingCert(ctx context.Context) ([]*x509.Certificate, error) {
	pods, err := c.Kube.CoreV1().Pods(SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: controllerSelector})
	if err != nil {
		return nil, fmt.Errorf("list the controller Pods: %w", err)
	}
	for _, p := range pods.Items {
		if p.Status.PodIP == "" || p.Status.Phase != corev1.PodRunning {
			continue
		}
		port := ""
		for _, ctr := range p.Spec.Containers {
			for _, cp := range ctr.Ports {
				if cp.Name == controllerPortName {
					port = strconv.Itoa(int(cp.ContainerPort))
				}
			}
		}
		if port == "" {
			port = strconv.Itoa(config.DefaultAPIPort)
		}
		probe := c.ProbeTLS
		if probe == nil {
			probe = probeTLS
		}
		return probe(ctx, net.JoinHostPort(p.Status.PodIP, port))
	}
	return nil, errors.New("no running controller Pod")
}

// probeTLS returns the certificates served at address. It verifies nothing itself: the caller
// checks them against the webhook's caBundle, which is what the API server trusts.
func probeTLS(ctx context.Context, address string) ([]*x509.Certificate, error) {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}} //nolint:gosec // read-only inspection, verified against caBundle by the caller
	conn, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, fmt.Errorf("connect to the controller at %s: %w", address, err)
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates, nil
}
