package podvlanctl

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/config"
)

// Names of the installed objects, as build/yamls/antrea.yml creates them.
const (
	SystemNamespace   = "kube-system"
	ConfigMapName     = "antrea-config"
	AgentDaemonSet    = "antrea-agent"
	ControllerName    = "antrea-controller"
	WebhookConfigName = "antrea-controller-ippool"
	// AgentSelector selects the agent Pods.
	AgentSelector = "app=antrea,component=antrea-agent"
)

// Resources the installation defines, as "group/version/resource".
const (
	ResourceIPPools = "crd.antrea.io/v1beta1/ippools"
	ResourceNADs    = "k8s.cni.cncf.io/v1/network-attachment-definitions"
)

// CertWarnBefore is how long before a webhook certificate expires doctor starts to warn.
const CertWarnBefore = 30 * 24 * time.Hour

// Check outcomes.
const (
	CheckOK   = "ok"
	CheckWarn = "warn"
	CheckFail = "fail"
	// CheckSkip means the check could not be made (no permission, a prerequisite failed).
	CheckSkip = "skip"
)

// Check is the outcome of one doctor check.
type Check struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	// Fix says what to do, for anything but ok.
	Fix string `json:"fix,omitempty"`
}

// Fetched is an object the client layer tried to read: the object, or why it has none.
type Fetched[T any] struct {
	Object *T
	// NotFound is true when the API server answered that it does not exist.
	NotFound bool
	// Err is any other failure (forbidden, unreachable), shown as the reason a check was skipped.
	Err error
}

// DoctorInput is everything RunChecks looks at.
type DoctorInput struct {
	// Resources are the API resources discovery found, as "group/version/resource".
	Resources        map[string]bool
	DiscoveryProblem error
	ConfigMap        Fetched[corev1.ConfigMap]
	DaemonSet        Fetched[appsv1.DaemonSet]
	Deployment       Fetched[appsv1.Deployment]
	Webhook          Fetched[admissionv1.ValidatingWebhookConfiguration]
	Nodes            []corev1.Node
	NodesProblem     error
	AgentPods        []corev1.Pod
	AgentPodsProblem error
	// ServingCert is the certificate the controller serves, when the client could reach it.
	ServingCert        []*x509.Certificate
	ServingCertProblem error
	Pools              []v1beta1.IPPool
	PoolsProblem       error
	// Holders are each pool's holders, by pool name.
	Holders map[string][]Holder
	Now     time.Time
}

// RunChecks checks the installation; every check appears once, in a fixed order.
func RunChecks(in DoctorInput) []Check {
	var checks []Check
	checks = append(checks, checkCRDs(in)...)
	_, controllerConf, configChecks := checkConfig(in)
	checks = append(checks, configChecks...)
	checks = append(checks, checkAgents(in))
	checks = append(checks, checkController(in))
	checks = append(checks, checkWebhook(in, controllerConf)...)
	checks = append(checks, checkPools(in)...)
	return checks
}

func checkCRDs(in DoctorInput) []Check {
	var checks []Check
	for _, c := range []struct{ name, resource string }{
		{"CRD ippools.crd.antrea.io", ResourceIPPools},
		{"CRD network-attachment-definitions.k8s.cni.cncf.io", ResourceNADs},
	} {
		switch {
		case in.DiscoveryProblem != nil && !in.Resources[c.resource]:
			checks = append(checks, Check{c.name, CheckSkip, "API discovery failed: " + in.DiscoveryProblem.Error(), "check the connection to the API server"})
		case in.Resources[c.resource]:
			checks = append(checks, Check{Name: c.name, Status: CheckOK, Detail: c.resource + " is served"})
		default:
			checks = append(checks, Check{c.name, CheckFail, c.resource + " is not served", "kubectl apply -f antrea.yml (the CRDs come first in it)"})
		}
	}
	return checks
}

// checkConfig loads both files of antrea-config and checks the gates and the bridge.
func checkConfig(in DoctorInput) (*config.Agent, *config.Controller, []Check) {
	const name = "ConfigMap kube-system/antrea-config"
	switch {
	case in.ConfigMap.NotFound:
		return nil, nil, []Check{{name, CheckFail, "not found", "kubectl apply -f antrea.yml"}}
	case in.ConfigMap.Object == nil:
		return nil, nil, []Check{{name, CheckSkip, fmt.Sprintf("cannot read it: %v", in.ConfigMap.Err), "grant get on configmaps/antrea-config in kube-system (docs/kubectl-plugin.md)"}}
	}
	data := in.ConfigMap.Object.Data
	var checks []Check
	agent, err := config.LoadAgent([]byte(data[config.AgentFileName]))
	if err != nil {
		checks = append(checks, Check{name + " " + config.AgentFileName, CheckFail, err.Error(),
			"fix the field named, then: kubectl -n kube-system rollout restart daemonset/antrea-agent"})
	}
	controller, err := config.LoadController([]byte(data[config.ControllerFileName]))
	if err != nil {
		checks = append(checks, Check{name + " " + config.ControllerFileName, CheckFail, err.Error(),
			"fix the field named, then: kubectl -n kube-system rollout restart deployment/antrea-controller"})
	}
	if agent == nil || controller == nil {
		return agent, controller, checks
	}
	var off []string
	if !agent.Gates.Enabled(config.SecondaryNetwork) {
		off = append(off, config.AgentFileName+" SecondaryNetwork")
	}
	if !agent.Gates.Enabled(config.AntreaIPAM) {
		off = append(off, config.AgentFileName+" AntreaIPAM")
	}
	if !controller.Gates.Enabled(config.AntreaIPAM) {
		off = append(off, config.ControllerFileName+" AntreaIPAM")
	}
	gates := Check{Name: "feature gates", Status: CheckOK, Detail: "SecondaryNetwork and AntreaIPAM are on in both files"}
	if len(off) > 0 {
		gates = Check{"feature gates", CheckWarn, "off: " + strings.Join(off, ", ") + " (Pods asking for secondary networks get none)",
			"set them to true in ConfigMap kube-system/antrea-config, then: kubectl -n kube-system rollout restart daemonset/antrea-agent deployment/antrea-controller"}
	}
	checks = append(checks, gates)
	bridge := Check{"secondary bridge", CheckWarn, "antrea-agent.conf configures no bridge (secondaryNetwork.ovsBridges)",
		"add a bridge with its uplinks, e.g. ovsBridges: [{bridgeName: br-secondary, physicalInterfaces: [eth1]}]"}
	if br, ok := agent.Bridge(); ok {
		bridge = Check{Name: "secondary bridge", Status: CheckOK,
			Detail: fmt.Sprintf("%s with uplinks [%s], datapath %s", br.BridgeName, strings.Join(br.PhysicalInterfaces, " "), agent.OVSDatapathType)}
	}
	checks = append(checks, bridge)
	return agent, controller, checks
}

// checkAgents checks that an agent Pod is ready on every Node that should run one.
func checkAgents(in DoctorInput) Check {
	const name = "antrea-agent DaemonSet"
	switch {
	case in.DaemonSet.NotFound:
		return Check{name, CheckFail, "daemonset kube-system/antrea-agent not found", "kubectl apply -f antrea.yml"}
	case in.DaemonSet.Object == nil:
		return Check{name, CheckSkip, fmt.Sprintf("cannot read it: %v", in.DaemonSet.Err), "grant get on daemonsets in kube-system (docs/kubectl-plugin.md)"}
	case in.NodesProblem != nil || in.AgentPodsProblem != nil:
		ds := in.DaemonSet.Object
		return Check{name, CheckSkip, fmt.Sprintf("%d of %d agents ready; cannot compare with the Nodes: %v", ds.Status.NumberReady,
			ds.Status.DesiredNumberScheduled, firstErr(in.NodesProblem, in.AgentPodsProblem)), "grant list on nodes and on pods in kube-system (docs/kubectl-plugin.md)"}
	}
	ds := in.DaemonSet.Object
	ready := map[string]bool{}
	notReady := map[string]string{}
	for _, p := range in.AgentPods {
		h := agentHealth([]corev1.Pod{p})
		if h.Ready {
			ready[p.Spec.NodeName] = true
		} else if p.Spec.NodeName != "" {
			notReady[p.Spec.NodeName] = h.Problem
		}
	}
	// A Node whose taint the agent does not tolerate only runs Pods that tolerate it too: worth a
	// warning (such Pods get no secondary network), not a failure of the installation.
	var failures, warnings []string
	for _, n := range in.Nodes {
		if ready[n.Name] {
			continue
		}
		if why, ok := notReady[n.Name]; ok {
			failures = append(failures, fmt.Sprintf("%s: agent not ready (%s)", n.Name, why))
			continue
		}
		if untolerated := untoleratedTaints(n.Spec.Taints, ds.Spec.Template.Spec.Tolerations); len(untolerated) > 0 {
			warnings = append(warnings, fmt.Sprintf("%s: no agent, taints %s not tolerated (Pods tolerating them get no secondary networks there)", n.Name, strings.Join(untolerated, ", ")))
			continue
		}
		// nodeSelector and required node affinity, as the DaemonSet controller reads them (the
		// manifests keep the agent off Nodes labelled podvlan.dev/agent=false this way).
		if match, err := nodeaffinity.GetRequiredNodeAffinity(&corev1.Pod{Spec: ds.Spec.Template.Spec}).Match(&n); err == nil && !match {
			warnings = append(warnings, fmt.Sprintf("%s: no agent, the DaemonSet's nodeSelector or node affinity excludes it", n.Name))
			continue
		}
		failures = append(failures, fmt.Sprintf("%s: no agent Pod", n.Name))
	}
	const fix = "kubectl -n kube-system describe daemonset antrea-agent; kubectl -n kube-system logs -l " + AgentSelector +
		" --tail=50; add tolerations for tainted Nodes that must run Pods with secondary networks"
	switch {
	case len(failures) > 0:
		return Check{name, CheckFail, strings.Join(append(failures, warnings...), "; "), fix}
	case len(warnings) > 0:
		return Check{name, CheckWarn, fmt.Sprintf("%d agents ready; ", len(ready)) + strings.Join(warnings, "; "), fix}
	}
	return Check{Name: name, Status: CheckOK, Detail: fmt.Sprintf("an agent is ready on each of the %d Nodes", len(in.Nodes))}
}

// untoleratedTaints lists the NoSchedule/NoExecute taints that no toleration tolerates.
func untoleratedTaints(taints []corev1.Taint, tolerations []corev1.Toleration) []string {
	var out []string
	for i := range taints {
		t := &taints[i]
		if t.Effect == corev1.TaintEffectPreferNoSchedule {
			continue
		}
		if !slices.ContainsFunc(tolerations, func(tol corev1.Toleration) bool { return tol.ToleratesTaint(klog.Background(), t, false) }) {
			out = append(out, fmt.Sprintf("%s=%s:%s", t.Key, t.Value, t.Effect))
		}
	}
	return out
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkController checks that the controller Deployment is available.
func checkController(in DoctorInput) Check {
	const name = "antrea-controller Deployment"
	switch {
	case in.Deployment.NotFound:
		return Check{name, CheckFail, "deployment kube-system/antrea-controller not found", "kubectl apply -f antrea.yml"}
	case in.Deployment.Object == nil:
		return Check{name, CheckSkip, fmt.Sprintf("cannot read it: %v", in.Deployment.Err), "grant get on deployments in kube-system (docs/kubectl-plugin.md)"}
	}
	d := in.Deployment.Object
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if d.Status.ReadyReplicas < want || want == 0 {
		return Check{name, CheckFail, fmt.Sprintf("%d of %d replicas ready", d.Status.ReadyReplicas, want),
			"kubectl -n kube-system describe deployment antrea-controller; kubectl -n kube-system logs deployment/antrea-controller --tail=50"}
	}
	return Check{Name: name, Status: CheckOK, Detail: fmt.Sprintf("%d of %d replicas ready", d.Status.ReadyReplicas, want)}
}

// checkWebhook checks the IPPool webhook: configured, served when configured, certificates valid.
func checkWebhook(in DoctorInput, controller *config.Controller) []Check {
	const name = "IPPool webhook"
	switch {
	case in.Webhook.NotFound:
		if controller != nil && controller.Gates.Enabled(config.AntreaIPAM) {
			return []Check{{name, CheckWarn, "validatingwebhookconfiguration antrea-controller-ippool not found: IPPools are not validated (overlaps, range removal)", "kubectl apply -f antrea.yml"}}
		}
		if controller == nil {
			return []Check{{Name: name, Status: CheckOK, Detail: "not installed"}}
		}
		return []Check{{Name: name, Status: CheckOK, Detail: "not installed (AntreaIPAM off in the controller)"}}
	case in.Webhook.Object == nil:
		return []Check{{name, CheckSkip, fmt.Sprintf("cannot read it: %v", in.Webhook.Err), "grant get on validatingwebhookconfigurations/antrea-controller-ippool (docs/kubectl-plugin.md)"}}
	}
	wh := in.Webhook.Object
	var checks []Check
	if controller != nil && !controller.Gates.Enabled(config.AntreaIPAM) {
		checks = append(checks, Check{name, CheckFail, "configured with failurePolicy Fail, but AntreaIPAM is off in antrea-controller.conf: every IPPool write is rejected",
			"turn AntreaIPAM on in antrea-controller.conf and restart the controller, or delete validatingwebhookconfiguration antrea-controller-ippool"})
	} else {
		checks = append(checks, Check{Name: name, Status: CheckOK, Detail: "configured"})
	}
	var bundle []byte
	for _, w := range wh.Webhooks {
		if len(w.ClientConfig.CABundle) > 0 {
			bundle = w.ClientConfig.CABundle
		}
	}
	cas, err := parseCerts(bundle)
	switch {
	case len(bundle) == 0:
		checks = append(checks, Check{"webhook CA bundle", CheckFail, "caBundle is empty: the API server cannot trust the controller",
			"with selfSignedCert: true the controller injects it at start (kubectl -n kube-system rollout restart deployment/antrea-controller); otherwise set caBundle, e.g. with cert-manager's CA injector"})
	case err != nil:
		checks = append(checks, Check{"webhook CA bundle", CheckFail, err.Error(), "replace caBundle with the PEM of the CA that signed the controller's certificate"})
	default:
		checks = append(checks, certCheck("webhook CA bundle", cas[0], in.Now))
	}
	switch {
	case in.ServingCertProblem != nil:
		checks = append(checks, Check{"webhook serving certificate", CheckSkip, "not checked: " + in.ServingCertProblem.Error(),
			"run doctor from a machine that reaches the controller Pod's address, or check the certificate's expiry in its Secret"})
	case len(in.ServingCert) > 0:
		c := certCheck("webhook serving certificate", in.ServingCert[0], in.Now)
		if len(cas) > 0 && c.Status != CheckFail {
			if err := verifyChain(in.ServingCert, cas, in.Now); err != nil {
				c = Check{c.Name, CheckFail, "the caBundle does not verify it: " + err.Error(),
					"restart the controller (selfSignedCert: true re-injects its CA), or put the signing CA in caBundle"}
			}
		}
		checks = append(checks, c)
	}
	return checks
}

// certCheck judges a certificate's validity period.
func certCheck(name string, cert *x509.Certificate, now time.Time) Check {
	left := cert.NotAfter.Sub(now)
	detail := fmt.Sprintf("%s valid until %s", cert.Subject.CommonName, cert.NotAfter.UTC().Format(time.RFC3339))
	switch {
	case now.Before(cert.NotBefore):
		return Check{name, CheckFail, fmt.Sprintf("%s not valid before %s (clock skew?)", cert.Subject.CommonName, cert.NotBefore.UTC().Format(time.RFC3339)), "check the clocks of the Nodes"}
	case left <= 0:
		return Check{name, CheckFail, "expired: " + detail, "kubectl -n kube-system rollout restart deployment/antrea-controller (a self-signed certificate is renewed at start), or renew the certificate given in files"}
	case left < CertWarnBefore:
		return Check{name, CheckWarn, fmt.Sprintf("expires in %d days: %s", int(left.Hours()/24), detail), "renew it before it expires: IPPool writes fail once it has (failurePolicy: Fail)"}
	}
	return Check{Name: name, Status: CheckOK, Detail: detail}
}

// parseCerts reads the PEM certificates of bundle.
func parseCerts(bundle []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for rest := bundle; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("caBundle: %w", err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("caBundle holds no PEM certificate")
	}
	return certs, nil
}

// verifyChain verifies a served chain against the CA bundle.
func verifyChain(chain, cas []*x509.Certificate, now time.Time) error {
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	for _, c := range cas {
		roots.AddCert(c)
	}
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now})
	return err
}

// checkPools warns about pools near exhaustion.
func checkPools(in DoctorInput) []Check {
	const name = "IPPools"
	if in.PoolsProblem != nil {
		return []Check{{name, CheckSkip, fmt.Sprintf("cannot list them: %v", in.PoolsProblem), "grant list on ippools.crd.antrea.io (docs/kubectl-plugin.md)"}}
	}
	var full, near []string
	for i := range in.Pools {
		p := &in.Pools[i]
		total, used := p.Status.Usage.Total, len(in.Holders[p.Name])
		switch {
		case total == 0:
		case used >= total:
			full = append(full, fmt.Sprintf("%s (%d/%d)", p.Name, used, total))
		case float64(used) >= NearExhaustion*float64(total):
			near = append(near, fmt.Sprintf("%s (%d/%d)", p.Name, used, total))
		}
	}
	const fix = "add a range to the pool (ranges can be added, never removed), or look for leaks: kubectl podvlan pool NAME"
	switch {
	case len(full) > 0:
		return []Check{{name, CheckFail, "exhausted: " + strings.Join(append(full, near...), ", "), fix}}
	case len(near) > 0:
		return []Check{{name, CheckWarn, fmt.Sprintf("at least %d%% used: %s", int(NearExhaustion*100), strings.Join(near, ", ")), fix}}
	}
	return []Check{{Name: name, Status: CheckOK, Detail: fmt.Sprintf("%d pools, none at %d%% or more", len(in.Pools), int(NearExhaustion*100))}}
}
