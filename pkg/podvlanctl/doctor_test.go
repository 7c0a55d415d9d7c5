package podvlanctl

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/controller/certs"
)

const controllerConfOn = "featureGates: {AntreaIPAM: true}\n"

func configMap(agent, controller string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: SystemNamespace, Name: ConfigMapName},
		Data: map[string]string{"antrea-agent.conf": agent, "antrea-controller.conf": controller}}
}

func daemonSet() *appsv1.DaemonSet {
	return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: SystemNamespace, Name: AgentDaemonSet},
		Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
			Tolerations:  []corev1.Toleration{{Key: "node-role.kubernetes.io/control-plane", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}}}}}
}

func deployment(ready int32) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: SystemNamespace, Name: ControllerName},
		Spec: appsv1.DeploymentSpec{Replicas: ptr(int32(1))}, Status: appsv1.DeploymentStatus{ReadyReplicas: ready}}
}

func linuxNode(name string, taints ...corev1.Taint) corev1.Node {
	return corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/os": "linux"}}, Spec: corev1.NodeSpec{Taints: taints}}
}

// servingBundle is a CA and serving certificate made by the controller's own generator at now.
func servingBundle(t *testing.T, now time.Time) (caPEM []byte, chain []*x509.Certificate) {
	t.Helper()
	b, err := certs.Generate(certs.ServiceNames(SystemNamespace, ControllerName), now)
	if err != nil {
		t.Fatal(err)
	}
	for rest := b.CertPEM; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			break
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		chain = append(chain, c)
	}
	return b.CAPEM, chain
}

func webhook(caPEM []byte) *admissionv1.ValidatingWebhookConfiguration {
	return &admissionv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: WebhookConfigName},
		Webhooks: []admissionv1.ValidatingWebhook{{Name: "ippool.crd.antrea.io", ClientConfig: admissionv1.WebhookClientConfig{CABundle: caPEM}}}}
}

// healthy is a DoctorInput of a working installation on two Nodes.
func healthy(t *testing.T) DoctorInput {
	caPEM, chain := servingBundle(t, t0)
	agent1, agent2 := agentPod("node-1", true, 0), agentPod("node-2", true, 0)
	return DoctorInput{
		Resources:   map[string]bool{ResourceIPPools: true, ResourceNADs: true},
		ConfigMap:   Fetched[corev1.ConfigMap]{Object: configMap(agentConf, controllerConfOn)},
		DaemonSet:   Fetched[appsv1.DaemonSet]{Object: daemonSet()},
		Deployment:  Fetched[appsv1.Deployment]{Object: deployment(1)},
		Webhook:     Fetched[admissionv1.ValidatingWebhookConfiguration]{Object: webhook(caPEM)},
		Nodes:       []corev1.Node{linuxNode("node-1"), linuxNode("node-2")},
		AgentPods:   []corev1.Pod{agent1, agent2},
		ServingCert: chain,
		Pools:       []v1beta1.IPPool{*pool("p", "10.0.0.1", 0, 10)},
		Holders:     map[string][]Holder{"p": make([]Holder, 5)},
		Now:         t0.Add(24 * time.Hour),
	}
}

func TestRunChecks(t *testing.T) {
	forbidden := errors.New(`configmaps "antrea-config" is forbidden`)
	otherCA, _ := servingBundle(t, t0)
	cases := []struct {
		name   string
		edit   func(in *DoctorInput)
		check  string // the check that must have status
		status string
		detail string
	}{
		{"a working installation passes every check", func(*DoctorInput) {}, "", CheckOK, ""},
		{"missing CRD", func(in *DoctorInput) { delete(in.Resources, ResourceIPPools) }, "CRD ippools.crd.antrea.io", CheckFail, "not served"},
		{"ConfigMap not readable: skipped with the permission to ask for", func(in *DoctorInput) { in.ConfigMap = Fetched[corev1.ConfigMap]{Err: forbidden} }, "ConfigMap kube-system/antrea-config", CheckSkip, "forbidden"},
		{"gates off: a warning naming each gate", func(in *DoctorInput) {
			in.ConfigMap.Object = configMap("featureGates: {SecondaryNetwork: true}\n", controllerConfOn)
		}, "feature gates", CheckWarn, "antrea-agent.conf AntreaIPAM"},
		{"bad agent configuration: the field path", func(in *DoctorInput) {
			in.ConfigMap.Object = configMap("ovsBridges: []\n", controllerConfOn)
		}, "ConfigMap kube-system/antrea-config antrea-agent.conf", CheckFail, "ovsBridges"},
		{"a Node with an untolerated taint has no agent: a warning", func(in *DoctorInput) {
			in.Nodes[1].Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
			in.AgentPods = in.AgentPods[:1]
		}, "antrea-agent DaemonSet", CheckWarn, "node-2: no agent, taints dedicated=db:NoSchedule not tolerated"},
		{"a Node the DaemonSet's node affinity excludes (podvlan.dev/agent=false) has no agent: a warning", func(in *DoctorInput) {
			in.Nodes[1].Labels = map[string]string{"podvlan.dev/agent": "false"}
			in.DaemonSet.Object.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
				RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
					MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "podvlan.dev/agent", Operator: corev1.NodeSelectorOpNotIn, Values: []string{"false"}}},
				}}},
			}}
			in.AgentPods = in.AgentPods[:1]
		}, "antrea-agent DaemonSet", CheckWarn, "node-2: no agent, the DaemonSet's nodeSelector or node affinity excludes it"},
		{"a schedulable Node without an agent Pod", func(in *DoctorInput) { in.AgentPods = in.AgentPods[:1] }, "antrea-agent DaemonSet", CheckFail, "node-2: no agent Pod"},
		{"an agent not ready", func(in *DoctorInput) { in.AgentPods[0] = agentPod("node-1", false, 3) }, "antrea-agent DaemonSet", CheckFail, "node-1: agent not ready (container antrea-agent waiting: CrashLoopBackOff"},
		{"controller not ready", func(in *DoctorInput) { in.Deployment.Object = deployment(0) }, "antrea-controller Deployment", CheckFail, "0 of 1"},
		{"webhook configured while the controller's gate is off rejects every IPPool write", func(in *DoctorInput) {
			in.ConfigMap.Object = configMap(agentConf, "featureGates: {AntreaIPAM: false}\n")
		}, "IPPool webhook", CheckFail, "every IPPool write is rejected"},
		{"empty caBundle", func(in *DoctorInput) { in.Webhook.Object = webhook(nil) }, "webhook CA bundle", CheckFail, "empty"},
		{"serving certificate expiring within 30 days", func(in *DoctorInput) { in.Now = t0.Add(350 * 24 * time.Hour) }, "webhook serving certificate", CheckWarn, "expires in"},
		{"serving certificate expired", func(in *DoctorInput) { in.Now = t0.Add(400 * 24 * time.Hour) }, "webhook serving certificate", CheckFail, "expired"},
		{"serving certificate not signed by the caBundle (a restarted controller not re-injected)", func(in *DoctorInput) {
			in.Webhook.Object = webhook(otherCA)
		}, "webhook serving certificate", CheckFail, "caBundle does not verify it"},
		{"controller not reachable from here: serving certificate skipped", func(in *DoctorInput) {
			in.ServingCert, in.ServingCertProblem = nil, errors.New("connect: timeout")
		}, "webhook serving certificate", CheckSkip, "timeout"},
		{"pool near exhaustion", func(in *DoctorInput) { in.Holders["p"] = make([]Holder, 9) }, "IPPools", CheckWarn, "p (9/10)"},
		{"pool exhausted", func(in *DoctorInput) { in.Holders["p"] = make([]Holder, 10) }, "IPPools", CheckFail, "exhausted: p (10/10)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := healthy(t)
			tc.edit(&in)
			checks := RunChecks(in)
			for _, c := range checks {
				if c.Status != CheckOK && c.Fix == "" {
					t.Errorf("check %q is %s without a fix", c.Name, c.Status)
				}
				if c.Name == tc.check {
					if c.Status != tc.status || !strings.Contains(c.Detail, tc.detail) {
						t.Errorf("check %q: %s %q, want %s with %q", c.Name, c.Status, c.Detail, tc.status, tc.detail)
					}
				} else if tc.check == "" && c.Status != CheckOK {
					t.Errorf("check %q: %s %q, want ok", c.Name, c.Status, c.Detail)
				}
			}
			if tc.check != "" && !containsCheck(checks, tc.check) {
				t.Errorf("no check %q in %+v", tc.check, checks)
			}
			if Healthy(checks) != (tc.status != CheckFail) {
				t.Errorf("Healthy = %v with a %s check", Healthy(checks), tc.status)
			}
		})
	}
}

func containsCheck(checks []Check, name string) bool {
	for _, c := range checks {
		if c.Name == name {
			return true
		}
	}
	return false
}
