package shim

import (
	"bytes"
	"encoding/json"
	"strings"
)

const (
	// PodAnnotationsCapability is the standard runtime capability under which the runtime passes
	// the Pod's annotations in runtimeConfig; the chained antrea entry declares it.
	PodAnnotationsCapability = "io.kubernetes.cri.pod-annotations"
	// networksAnnotation is the annotation that asks for secondary networks.
	networksAnnotation = "k8s.v1.cni.cncf.io/networks"
)

// isChained reports whether conf is the chained antrea entry: type antrea without networkType
// or ipam (a Multus delegate has networkType; an IPAM-only configuration has another type).
func isChained(conf *shimConfig) bool {
	return conf.Type == "antrea" && isAbsent(conf.NetworkType) && isAbsent(conf.IPAM)
}

func isAbsent(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// podAnnotations returns the Pod annotations the runtime passed, and whether it passed any:
// false when the runtime does not support the capability (runtimeConfig has no such key, or a
// value that is not an object of strings), so that the caller asks the agent instead.
func podAnnotations(runtimeConfig json.RawMessage) (map[string]string, bool) {
	if isAbsent(runtimeConfig) {
		return nil, false
	}
	var rc map[string]json.RawMessage
	if err := json.Unmarshal(runtimeConfig, &rc); err != nil {
		return nil, false
	}
	raw, ok := rc[PodAnnotationsCapability]
	if !ok || isAbsent(raw) {
		return nil, false
	}
	var annotations map[string]string
	if err := json.Unmarshal(raw, &annotations); err != nil {
		return nil, false
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	return annotations, true
}

// answerWithoutAgent decides whether an ADD or CHECK of the chained entry can be answered from
// its own input: the runtime passed the Pod's annotations and they ask for no secondary network,
// so the answer is the previous result (ADD) or nothing to check (CHECK). Anything else, and
// every other command, goes to the agent.
func answerWithoutAgent(command string, conf *shimConfig) bool {
	if command != commandAdd && command != commandCheck {
		return false
	}
	if !isChained(conf) || isAbsent(conf.PrevResult) || conf.CNIVersion == "" {
		return false
	}
	annotations, known := podAnnotations(conf.RuntimeConfig)
	if !known {
		return false
	}
	return strings.TrimSpace(annotations[networksAnnotation]) == ""
}

// podIdentity is the Pod a CNI call is for, from CNI_ARGS.
type podIdentity struct {
	Namespace, Name, UID string
}

// podFromArgs reads K8S_POD_NAMESPACE, K8S_POD_NAME and K8S_POD_UID from CNI_ARGS
// ("K1=V1;K2=V2"); malformed pairs are skipped (the agent validates CNI_ARGS).
func podFromArgs(args string) podIdentity {
	var pod podIdentity
	for _, pair := range strings.Split(args, ";") {
		key, value, ok := strings.Cut(pair, "=")
		if !ok {
			continue
		}
		switch key {
		case "K8S_POD_NAMESPACE":
			pod.Namespace = value
		case "K8S_POD_NAME":
			pod.Name = value
		case "K8S_POD_UID":
			pod.UID = value
		}
	}
	return pod
}
