// Package yamls holds the install manifests; this test reads the assembled antrea.yml the way the
// API server would (strictly: a misspelled field is an error) and checks what it promises: both
// gates off, least-privilege RBAC, an agent that can reach what it needs on the Node.
package yamls

import (
	"bufio"
	"bytes"
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
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/podvlan/podvlan/pkg/config"
)

// manifest is antrea.yml split into documents, by "Kind/namespace/name".
type manifest map[string][]byte

func loadManifest(t *testing.T) manifest {
	t.Helper()
	data, err := os.ReadFile("antrea.yml")
	if err != nil {
		t.Fatalf("read antrea.yml (hack/manifests.sh writes it): %v", err)
	}
	m := manifest{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("split antrea.yml: %v", err)
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatalf("document of antrea.yml: %v\n%s", err, doc)
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
		"CustomResourceDefinition//network-attachment-definitions.k8s.cni.cncf.io",
		"CustomResourceDefinition//ippools.crd.antrea.io",
		"CustomResourceDefinition//ippoolblocks.crd.antrea.io",
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
			name: "agent in kube-system: its own DaemonSet, for the preStop hook",
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
	for _, tol := range spec.Tolerations {
		if tol.Key == "" && tol.Operator == corev1.TolerationOpExists {
			t.Errorf("toleration %+v tolerates every taint: Nodes that must not run the agent (podvlan.dev/simulated) would", tol)
		}
	}
	if len(spec.InitContainers) != 1 || spec.InitContainers[0].Command[0] != "/usr/local/bin/antrea-install-cni" {
		t.Fatalf("init containers = %+v, want the install step", spec.InitContainers)
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
	if pre := agent.Lifecycle; pre == nil || pre.PreStop == nil || pre.PreStop.Exec == nil ||
		!slices.Contains(pre.PreStop.Exec.Command, "--uninstall") {
		t.Error("no preStop hook uninstalls the CNI plugin")
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

// The documented uninstall that keeps IPPools and NADs, kubectl delete -f antrea.yml -l app=antrea,
// must catch every object but the CRDs.
func TestUninstallByLabelKeepsOnlyTheCRDs(t *testing.T) {
	m := loadManifest(t)
	for key, doc := range m {
		var obj struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &obj); err != nil {
			t.Fatal(err)
		}
		isCRD := strings.HasPrefix(key, "CustomResourceDefinition/")
		if labelled := obj.Metadata.Labels["app"] == "antrea"; labelled == isCRD {
			t.Errorf("%s: labelled app=antrea is %v, want %v", key, labelled, !isCRD)
		}
	}
}
