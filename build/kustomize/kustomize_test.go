// Package kustomize holds the kustomize base and example overlay of a release (hack/release.sh
// puts the release's antrea.yml into base/manifest/). These tests render them the way an operator
// does, with kubectl kustomize.
package kustomize

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	"github.com/podvlan/podvlan/internal/teststack"
)

// The base generates antrea-config from its two files: they must say what the manifest's
// ConfigMap says, or installing through kustomize would configure differently.
func TestBaseConfigFilesAreTheManifestDefaults(t *testing.T) {
	data, err := os.ReadFile("../yamls/base/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(data, &cm); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"antrea-agent.conf", "antrea-controller.conf"} {
		file, err := os.ReadFile(filepath.Join("base", name))
		if err != nil {
			t.Fatal(err)
		}
		if string(file) != cm.Data[name] {
			t.Errorf("base/%s differs from the %s key of build/yamls/base/config.yaml", name, name)
		}
	}
}

// kubectl finds a kubectl: the local cluster's, else the one in PATH.
func kubectl(t *testing.T) string {
	if env, err := teststack.LoadLocalEnv(); err == nil {
		return env.Kubectl
	}
	if k, err := exec.LookPath("kubectl"); err == nil {
		return k
	}
	t.Skip("no kubectl: start the local cluster (hack/local-cluster.sh up) or put kubectl in PATH")
	return ""
}

// render copies the base (with the committed antrea.yml) and the example overlay into a
// directory, lets edit change the overlay, and returns kubectl kustomize's output by kind/name.
func render(t *testing.T, edit func(overlay string)) map[string][]byte {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "base", "overlays", dir).CombinedOutput(); err != nil {
		t.Fatalf("copy: %v\n%s", err, out)
	}
	manifest, err := os.ReadFile("../yamls/antrea.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "base/manifest/antrea.yml"), manifest, 0o644); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "overlays/example")
	if edit != nil {
		edit(overlay)
	}
	out, err := exec.Command(kubectl(t), "kustomize", overlay).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize: %v", err)
	}
	objs := map[string][]byte{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(out)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		var head struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &head); err != nil {
			t.Fatal(err)
		}
		objs[head.Kind+"/"+head.Metadata.Name] = doc
	}
	return objs
}

// configMap returns the one generated ConfigMap's name and agent configuration.
func configMap(t *testing.T, objs map[string][]byte) (string, string) {
	t.Helper()
	var names []string
	var agentConf string
	for key, doc := range objs {
		if strings.HasPrefix(key, "ConfigMap/") {
			var cm corev1.ConfigMap
			if err := yaml.Unmarshal(doc, &cm); err != nil {
				t.Fatal(err)
			}
			names = append(names, cm.Name)
			agentConf = cm.Data["antrea-agent.conf"]
			if cm.Labels["app"] != "antrea" {
				t.Errorf("ConfigMap %s is not labelled app=antrea: the documented uninstall would miss it", cm.Name)
			}
		}
	}
	if len(names) != 1 || !strings.HasPrefix(names[0], "antrea-config-") {
		t.Fatalf("ConfigMaps %v, want one antrea-config-<hash>", names)
	}
	return names[0], agentConf
}

func TestExampleOverlayUsesTheOperatorsRegistryAndConfiguration(t *testing.T) {
	objs := render(t, nil)
	name, agentConf := configMap(t, objs)
	if !strings.Contains(agentConf, "SecondaryNetwork: true") || !strings.Contains(agentConf, "bridgeName: br-secondary") {
		t.Errorf("the agent configuration is not the overlay's:\n%s", agentConf)
	}
	var ds appsv1.DaemonSet
	if err := yaml.Unmarshal(objs["DaemonSet/antrea-agent"], &ds); err != nil {
		t.Fatal(err)
	}
	var dep appsv1.Deployment
	if err := yaml.Unmarshal(objs["Deployment/antrea-controller"], &dep); err != nil {
		t.Fatal(err)
	}
	for _, spec := range []corev1.PodSpec{ds.Spec.Template.Spec, dep.Spec.Template.Spec} {
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			if !strings.HasPrefix(c.Image, "registry.example.com/podvlan/antrea-") {
				t.Errorf("container %s runs %s, not an image of the overlay's registry", c.Name, c.Image)
			}
		}
		found := false
		for _, v := range spec.Volumes {
			if v.ConfigMap != nil {
				found = true
				if v.ConfigMap.Name != name {
					t.Errorf("volume %s mounts ConfigMap %s, want the generated %s", v.Name, v.ConfigMap.Name, name)
				}
			}
		}
		if !found {
			t.Error("no Pod mounts the configuration")
		}
	}
}

func TestChangingTheOverlaysConfigurationRenamesTheConfigMapSoPodsRoll(t *testing.T) {
	before, _ := configMap(t, render(t, nil))
	after, _ := configMap(t, render(t, func(overlay string) {
		p := filepath.Join(overlay, "antrea-agent.conf")
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, bytes.Replace(data, []byte("[eth1]"), []byte("[eth2]"), 1), 0o644); err != nil {
			t.Fatal(err)
		}
	}))
	if before == after {
		t.Errorf("the ConfigMap is %s before and after the change: the Pods would not roll", before)
	}
}
