// Package yamls holds the install manifests; this test reads the assembled antrea.yml and crds.yml
// the way the API server would (strictly: a misspelled field is an error) and checks what they
// promise: both gates off, least-privilege RBAC, an agent that can reach what it needs on the Node
// and whose rollouts wait for it to be ready, and an uninstall that never deletes a CRD.
package yamls

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/podvlan/podvlan/pkg/config"
)

// manifest is antrea.yml (or another manifest file) split into documents, by "Kind/namespace/name".
type manifest map[string][]byte

func loadManifest(t *testing.T) manifest { return loadManifestFile(t, "antrea.yml") }

// loadManifestFile is loadManifest for another assembled file (antrea-with-ovs.yml).
func loadManifestFile(t *testing.T, name string) manifest {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatalf("read %s (hack/manifests.sh writes it): %v", name, err)
	}
	m := manifest{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("split %s: %v", name, err)
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("document of %s: %v\n%s", name, err, doc)
		}
		if head.Kind == "" {
			continue // comments only
		}
		key := head.Kind + "/" + head.Metadata.Namespace + "/" + head.Metadata.Name
		if _, dup := m[key]; dup {
			t.Fatalf("%s appears twice", key)
		}
		m[key] = doc
	}
	return m
}

// decode strictly decodes the document key into out.
func (m manifest) decode(t *testing.T, key string, out any) {
	t.Helper()
	doc, ok := m[key]
	if !ok {
		t.Fatalf("antrea.yml has no %s", key)
	}
	if err := yaml.UnmarshalStrict(doc, out); err != nil {
		t.Fatalf("%s: %v", key, err)
	}
}

func TestManifestHasEveryPiece(t *testing.T) {
	m := loadManifest(t)
	want := []string{
		"ConfigMap/kube-system/antrea-config",
		"ServiceAccount/kube-system/antrea-agent",
		"ClusterRole//antrea-agent",
		"ClusterRoleBinding//antrea-agent",
		"Role/kube-system/antrea-agent",
		"RoleBinding/kube-system/antrea-agent",
		"ServiceAccount/kube-system/antrea-controller",
		"ClusterRole//antrea-controller",
		"ClusterRoleBinding//antrea-controller",
		"DaemonSet/kube-system/antrea-agent",
		"Deployment/kube-system/antrea-controller",
		"Service/kube-system/antrea-controller",
		"ValidatingWebhookConfiguration//antrea-controller-ippool",
	}
	var got []string
	for k := range m {
		got = append(got, k)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("antrea.yml objects:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConfigMapLoadsWithBothGatesOff(t *testing.T) {
	m := loadManifest(t)
	var cm corev1.ConfigMap
	m.decode(t, "ConfigMap/kube-system/antrea-config", &cm)
	agent, err := config.LoadAgent([]byte(cm.Data[config.AgentFileName]))
	if err != nil {
		t.Fatalf("%s does not load: %v", config.AgentFileName, err)
	}
	controller, err := config.LoadController([]byte(cm.Data[config.ControllerFileName]))
	if err != nil {
		t.Fatalf("%s does not load: %v", config.ControllerFileName, err)
	}
	cases := []struct {
		name string
		on   bool
	}{
		{"agent SecondaryNetwork is off", agent.Gates.Enabled(config.SecondaryNetwork)},
		{"agent AntreaIPAM is off", agent.Gates.Enabled(config.AntreaIPAM)},
		{"controller AntreaIPAM is off", controller.Gates.Enabled(config.AntreaIPAM)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.on {
				t.Error("the gate is on")
			}
		})
	}
	if !agent.Gates.Enabled(config.IPPoolBlocks) {
		t.Error("agent IPPoolBlocks is off, want its default (on)")
	}
	if agent.CNISocket != config.DefaultCNISocket || agent.OVSRunDir != config.DefaultOVSRunDir {
		t.Errorf("agent paths = %s, %s; want the defaults the DaemonSet mounts", agent.CNISocket, agent.OVSRunDir)
	}
	if controller.APIPort != config.DefaultAPIPort {
		t.Errorf("controller apiPort = %d, want %d (the Deployment's containerPort)", controller.APIPort, config.DefaultAPIPort)
	}
}

// permissions lists the rules as "verb group/resource[/name]", sorted.
func permissions(rules []rbacv1.PolicyRule) []string {
	var out []string
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if len(r.ResourceNames) == 0 {
						out = append(out, v+" "+g+"/"+res)
					}
					for _, n := range r.ResourceNames {
						out = append(out, v+" "+g+"/"+res+"/"+n)
					}
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func TestRBACIsLeastPrivilege(t *testing.T) {
	m := loadManifest(t)
	cases := []struct {
		name string
		key  string
		role any
		want []string
	}{
		{
			name: "agent cluster-wide",
			key:  "ClusterRole//antrea-agent",
			role: &rbacv1.ClusterRole{},
			want: []string{
				"create /events", "patch /events",
				"get /nodes",
				"get /pods", "list /pods", "watch /pods",
				"patch /pods/status",
				"get crd.antrea.io/ippools", "list crd.antrea.io/ippools", "watch crd.antrea.io/ippools",
				"update crd.antrea.io/ippools/status",
				"get crd.antrea.io/ippoolblocks", "list crd.antrea.io/ippoolblocks", "watch crd.antrea.io/ippoolblocks",
				"create crd.antrea.io/ippoolblocks", "update crd.antrea.io/ippoolblocks",
				"get k8s.cni.cncf.io/network-attachment-definitions", "list k8s.cni.cncf.io/network-attachment-definitions",
				"watch k8s.cni.cncf.io/network-attachment-definitions",
			},
		},
		{
			name: "agent in kube-system: its own DaemonSet, to tell an uninstall from a restart when it stops",
			key:  "Role/kube-system/antrea-agent",
			role: &rbacv1.Role{},
			want: []string{"get apps/daemonsets/antrea-agent"},
		},
		{
			name: "controller",
			key:  "ClusterRole//antrea-controller",
			role: &rbacv1.ClusterRole{},
			want: []string{
				"get /pods", "list /pods", "watch /pods",
				"get crd.antrea.io/ippools", "list crd.antrea.io/ippools", "watch crd.antrea.io/ippools",
				"update crd.antrea.io/ippools/status",
				"get crd.antrea.io/ippoolblocks", "list crd.antrea.io/ippoolblocks", "watch crd.antrea.io/ippoolblocks",
				"update crd.antrea.io/ippoolblocks", "delete crd.antrea.io/ippoolblocks",
				"get /nodes", "list /nodes", "watch /nodes",
				"create admissionregistration.k8s.io/validatingwebhookconfigurations",
				"get admissionregistration.k8s.io/validatingwebhookconfigurations/antrea-controller-ippool",
				"update admissionregistration.k8s.io/validatingwebhookconfigurations/antrea-controller-ippool",
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m.decode(t, tc.key, tc.role)
			var rules []rbacv1.PolicyRule
			switch r := tc.role.(type) {
			case *rbacv1.ClusterRole:
				rules = r.Rules
			case *rbacv1.Role:
				rules = r.Rules
			}
			slices.Sort(tc.want)
			if got := permissions(rules); !slices.Equal(got, tc.want) {
				t.Errorf("permissions:\n%s\nwant exactly\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestAgentDaemonSet(t *testing.T) {
	m := loadManifest(t)
	var ds appsv1.DaemonSet
	m.decode(t, "DaemonSet/kube-system/antrea-agent", &ds)
	spec := ds.Spec.Template.Spec
	if !spec.HostNetwork {
		t.Error("the agent is not on the host network")
	}
	if spec.ServiceAccountName != "antrea-agent" {
		t.Errorf("serviceAccountName = %q", spec.ServiceAccountName)
	}
	if !slices.ContainsFunc(spec.Tolerations, func(tol corev1.Toleration) bool {
		return tol.Key == "" && tol.Operator == corev1.TolerationOpExists && tol.Effect == ""
	}) {
		t.Errorf("tolerations %+v: a tainted Node would get no agent and its Pods no secondary interfaces", spec.Tolerations)
	}
	if !keepsOffOptedOutNodes(spec.Affinity) {
		t.Errorf("affinity %+v does not keep the agent off Nodes labelled %s=false", spec.Affinity, agentOptOutLabel)
	}
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Command[0] != "/usr/local/bin/antrea-install-cni" {
		t.Fatalf("init containers = %+v, want the install step", spec.InitContainers)
	}
	if !slices.Contains(spec.InitContainers[0].Args, "--binary-only") {
		t.Errorf("the install step %v chains antrea itself: the agent keeps the chain, by its SecondaryNetwork gate", spec.InitContainers[0].Args)
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("containers = %d, want 1", len(spec.Containers))
	}
	agent := spec.Containers[0]
	if agent.SecurityContext == nil || agent.SecurityContext.Privileged == nil || !*agent.SecurityContext.Privileged {
		t.Error("the agent is not privileged")
	}
	nodeName := false
	for _, e := range agent.Env {
		if e.Name == "NODE_NAME" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.nodeName" {
			nodeName = true
		}
	}
	if !nodeName {
		t.Error("NODE_NAME does not come from spec.nodeName")
	}
	for _, want := range []string{"--cni-conf-dir=/host/etc/cni/net.d", "--cni-bin-dir=/host/opt/cni/bin",
		"--daemonset=" + ds.Namespace + "/" + ds.Name} {
		if !slices.Contains(agent.Args, want) {
			t.Errorf("agent args %v lack %s: the chain keeper and the uninstall need it", agent.Args, want)
		}
	}
	if pre := agent.Lifecycle; pre != nil && pre.PreStop != nil {
		// A hook unchaining while the agent's keeper still runs would be chained again at once.
		t.Errorf("preStop hook %+v: the agent uninstalls itself as it stops", pre.PreStop)
	}
	hostPaths := map[string]string{}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, vm := range agent.VolumeMounts {
		if p, ok := hostPaths[vm.Name]; ok {
			mounts[p] = vm
		}
	}
	for _, vm := range spec.InitContainers[0].VolumeMounts {
		if p, ok := hostPaths[vm.Name]; ok {
			if _, seen := mounts[p]; !seen {
				mounts[p] = vm
			}
		}
	}
	cases := []struct {
		hostPath    string
		mountPath   string
		propagation corev1.MountPropagationMode
	}{
		{"/opt/cni/bin", "/host/opt/cni/bin", ""},
		{"/etc/cni/net.d", "/host/etc/cni/net.d", ""},
		{"/var/run/antrea", "/var/run/antrea", ""},
		{"/var/run/openvswitch", "/var/run/openvswitch", ""},
		{"/run/netns", "/var/run/netns", corev1.MountPropagationHostToContainer},
	}
	for _, tc := range cases {
		t.Run("mounts "+tc.hostPath, func(t *testing.T) {
			vm, ok := mounts[tc.hostPath]
			if !ok {
				t.Fatalf("the host's %s is not mounted", tc.hostPath)
			}
			var prop corev1.MountPropagationMode
			if vm.MountPropagation != nil {
				prop = *vm.MountPropagation
			}
			if vm.MountPath != tc.mountPath || prop != tc.propagation {
				t.Errorf("mounted at %s (propagation %q), want %s (%q)", vm.MountPath, prop, tc.mountPath, tc.propagation)
			}
		})
	}
}

// The probes reach the agent's own endpoint, and a rollout waits for each Node's agent to be ready.
func TestAgentProbesAndRollout(t *testing.T) {
	m := loadManifest(t)
	var ds appsv1.DaemonSet
	m.decode(t, "DaemonSet/kube-system/antrea-agent", &ds)
	agent := ds.Spec.Template.Spec.Containers[0]
	// The agent's --metrics-bind-address, by default or as given; it listens on the loopback
	// address at least, which the kubelet reaches on the host network.
	host, port := "127.0.0.1", "10351"
	for _, a := range agent.Args {
		if v, ok := strings.CutPrefix(a, "--metrics-bind-address="); ok {
			if h, p, ok := strings.Cut(v, ":"); ok {
				port = p
				if h != "" {
					host = h
				}
			}
		}
	}
	cases := []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{
		{"liveness", agent.LivenessProbe, "/livez"},
		{"readiness", agent.ReadinessProbe, "/readyz"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.probe == nil || tc.probe.HTTPGet == nil {
				t.Fatalf("no HTTP %s probe", tc.name)
			}
			g := tc.probe.HTTPGet
			if g.Path != tc.path || g.Host != host || g.Port.String() != port {
				t.Errorf("%s probe gets %s:%s%s, want %s:%s%s (the agent's metrics endpoint)", tc.name, g.Host, g.Port.String(), g.Path, host, port, tc.path)
			}
		})
	}
	if lp := agent.LivenessProbe; lp != nil && int(lp.PeriodSeconds)*int(lp.FailureThreshold) < 30 {
		t.Errorf("liveness gives up after %ds: a busy agent must not be restarted that fast", lp.PeriodSeconds*lp.FailureThreshold)
	}
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType || ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.String() != "1" {
		t.Errorf("update strategy %+v: want a rolling update of one Node at a time", ds.Spec.UpdateStrategy)
	}
	if ds.Spec.MinReadySeconds <= 0 {
		t.Error("minReadySeconds is 0: a rollout goes on as soon as an agent is ready once")
	}
}

func TestControllerIsReachableThroughTheWebhookService(t *testing.T) {
	m := loadManifest(t)
	var dep appsv1.Deployment
	m.decode(t, "Deployment/kube-system/antrea-controller", &dep)
	var svc corev1.Service
	m.decode(t, "Service/kube-system/antrea-controller", &svc)
	var wh admissionregistrationv1.ValidatingWebhookConfiguration
	m.decode(t, "ValidatingWebhookConfiguration//antrea-controller-ippool", &wh)

	c := dep.Spec.Template.Spec.Containers[0]
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != config.DefaultAPIPort {
		t.Errorf("controller ports = %+v, want apiPort %d", c.Ports, config.DefaultAPIPort)
	}
	for k, v := range svc.Spec.Selector {
		if dep.Spec.Template.Labels[k] != v {
			t.Errorf("the Service selects %s=%s, which the controller Pods do not carry", k, v)
		}
	}
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort.String() != c.Ports[0].Name {
		t.Errorf("Service ports = %+v, want one targeting %q", svc.Spec.Ports, c.Ports[0].Name)
	}
	for _, w := range wh.Webhooks {
		ref := w.ClientConfig.Service
		if ref == nil || ref.Namespace != svc.Namespace || ref.Name != svc.Name || ref.Port == nil || *ref.Port != svc.Spec.Ports[0].Port {
			t.Errorf("webhook %s calls %+v, not the Service %s/%s:%d", w.Name, ref, svc.Namespace, svc.Name, svc.Spec.Ports[0].Port)
		}
	}
}

func TestImagesAreTheLocalDefaults(t *testing.T) {
	m := loadManifest(t)
	var ds appsv1.DaemonSet
	m.decode(t, "DaemonSet/kube-system/antrea-agent", &ds)
	var dep appsv1.Deployment
	m.decode(t, "Deployment/kube-system/antrea-controller", &dep)
	var containers []corev1.Container
	containers = append(containers, ds.Spec.Template.Spec.InitContainers...)
	containers = append(containers, ds.Spec.Template.Spec.Containers...)
	containers = append(containers, dep.Spec.Template.Spec.Containers...)
	for _, c := range containers {
		if !strings.HasPrefix(c.Image, "podvlan.local/antrea-") || !strings.HasSuffix(c.Image, ":dev") ||
			c.ImagePullPolicy != corev1.PullIfNotPresent {
			t.Errorf("container %s: image %s (%s), want podvlan.local/antrea-*:dev with IfNotPresent (make manifests)", c.Name, c.Image, c.ImagePullPolicy)
		}
	}
}

// The documented uninstall, kubectl delete -f antrea.yml, must never delete a CRD (deleting the
// NetworkAttachmentDefinition CRD deletes every NAD of the cluster, Multus's too): the CRDs are in
// crds.yml, and only there.
func TestCRDsAreInTheirOwnFile(t *testing.T) {
	for key := range loadManifest(t) {
		if strings.HasPrefix(key, "CustomResourceDefinition/") {
			t.Errorf("antrea.yml holds %s: kubectl delete -f antrea.yml would delete it", key)
		}
	}
	crds := loadManifestFile(t, "crds.yml")
	var got []string
	for key := range crds {
		got = append(got, key)
	}
	slices.Sort(got)
	want := []string{
		"CustomResourceDefinition//ippoolblocks.crd.antrea.io",
		"CustomResourceDefinition//ippools.crd.antrea.io",
		"CustomResourceDefinition//network-attachment-definitions.k8s.cni.cncf.io",
	}
	if !slices.Equal(got, want) {
		t.Errorf("crds.yml holds %v, want exactly %v", got, want)
	}
}

// agentOptOutLabel=false on a Node keeps the agent off it (the local cluster's simulated Nodes).
const agentOptOutLabel = "podvlan.dev/agent"

func keepsOffOptedOutNodes(a *corev1.Affinity) bool {
	if a == nil || a.NodeAffinity == nil || a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return false
	}
	terms := a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return false
	}
	// Terms are ORed: every one must exclude the label.
	for _, term := range terms {
		if !slices.ContainsFunc(term.MatchExpressions, func(r corev1.NodeSelectorRequirement) bool {
			return r.Key == agentOptOutLabel && r.Operator == corev1.NodeSelectorOpNotIn && slices.Equal(r.Values, []string{"false"})
		}) {
			return false
		}
	}
	return true
}

// workloads returns the agent DaemonSet's and the controller Deployment's metadata and Pod templates.
func workloads(t *testing.T, m manifest) map[string]struct {
	labels   map[string]string
	template corev1.PodTemplateSpec
} {
	var ds appsv1.DaemonSet
	m.decode(t, "DaemonSet/kube-system/antrea-agent", &ds)
	var dep appsv1.Deployment
	m.decode(t, "Deployment/kube-system/antrea-controller", &dep)
	return map[string]struct {
		labels   map[string]string
		template corev1.PodTemplateSpec
	}{
		"antrea-agent":      {ds.Labels, ds.Spec.Template},
		"antrea-controller": {dep.Labels, dep.Spec.Template},
	}
}

func TestWorkloadsCarryTheRecommendedLabels(t *testing.T) {
	m := loadManifest(t)
	for name, w := range workloads(t, m) {
		t.Run(name, func(t *testing.T) {
			for where, labels := range map[string]map[string]string{"object": w.labels, "Pod template": w.template.Labels} {
				want := map[string]string{
					"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": "podvlan", "app.kubernetes.io/version": "dev",
				}
				for k, v := range want {
					if labels[k] != v {
						t.Errorf("%s label %s = %q, want %q", where, k, labels[k], v)
					}
				}
				if labels["app.kubernetes.io/component"] == "" {
					t.Errorf("%s has no app.kubernetes.io/component", where)
				}
			}
		})
	}
}

func TestPodsRollWhenTheConfigMapChanges(t *testing.T) {
	m := loadManifest(t)
	piece, err := os.ReadFile("base/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(piece)
	want := hex.EncodeToString(sum[:])[:16]
	for name, w := range workloads(t, m) {
		if got := w.template.Annotations["checksum/config"]; got != want {
			t.Errorf("%s: checksum/config = %q, want the sum of base/config.yaml %q (make manifests)", name, got, want)
		}
	}
}

func TestControllerRunsWithTheRuntimeDefaultSeccompProfile(t *testing.T) {
	m := loadManifest(t)
	var dep appsv1.Deployment
	m.decode(t, "Deployment/kube-system/antrea-controller", &dep)
	sc := dep.Spec.Template.Spec.SecurityContext
	if sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("Pod securityContext %+v, want seccompProfile RuntimeDefault", sc)
	}
}

func TestAgentRequestsWhatItWasMeasuredToUse(t *testing.T) {
	m := loadManifest(t)
	var ds appsv1.DaemonSet
	m.decode(t, "DaemonSet/kube-system/antrea-agent", &ds)
	agent := ds.Spec.Template.Spec.Containers[0]
	// docs/performance.md: 55 MiB steady with 110 Pods, 70-100 MiB at a burst's peak.
	if mem := agent.Resources.Requests.Memory(); mem.Cmp(resource.MustParse("96Mi")) < 0 {
		t.Errorf("memory request %s is below the measured peak", mem)
	}
	if _, limited := agent.Resources.Limits[corev1.ResourceMemory]; limited {
		t.Error("a memory limit would have the agent killed in a burst, leaving Pods without interfaces")
	}
}

func TestAgentMetricsPortIsNamedForPodMonitors(t *testing.T) {
	m := loadManifest(t)
	var ds appsv1.DaemonSet
	m.decode(t, "DaemonSet/kube-system/antrea-agent", &ds)
	agent := ds.Spec.Template.Spec.Containers[0]
	if !slices.ContainsFunc(agent.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 10351 }) {
		t.Errorf("ports %+v, want metrics 10351 (the agent's default --metrics-bind-address)", agent.Ports)
	}
	for _, a := range agent.Args {
		if strings.HasPrefix(a, "--metrics-bind-address") {
			t.Errorf("args override the metrics address: %s", a)
		}
	}
}

func TestIPPoolColumnsShowVLANAndSubnet(t *testing.T) {
	m := loadManifestFile(t, "crds.yml")
	var crd struct {
		Spec struct {
			Versions []struct {
				AdditionalPrinterColumns []struct {
					Name     string `json:"name"`
					JSONPath string `json:"jsonPath"`
				} `json:"additionalPrinterColumns"`
			} `json:"versions"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(m["CustomResourceDefinition//ippools.crd.antrea.io"], &crd); err != nil || len(crd.Spec.Versions) == 0 {
		t.Fatalf("IPPool CRD: %v", err)
	}
	var got []string
	for _, c := range crd.Spec.Versions[0].AdditionalPrinterColumns {
		got = append(got, c.Name+"="+c.JSONPath)
	}
	want := []string{"VLAN=.spec.subnetInfo.vlan", "Gateway=.spec.subnetInfo.gateway", "Prefix=.spec.subnetInfo.prefixLength",
		"Total=.status.usage.total", "Used=.status.usage.used", "Age=.metadata.creationTimestamp"}
	if !slices.Equal(got, want) {
		t.Errorf("printer columns %v, want %v", got, want)
	}
}
