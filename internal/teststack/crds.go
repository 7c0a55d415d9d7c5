package teststack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// crdFieldManager owns the CRDs the tests apply (server-side apply).
const crdFieldManager = "podvlan-teststack"

// InstallCRDs applies every CustomResourceDefinition under build/yamls/crds to the cluster and
// waits until each one is Established and served. Repeating it is harmless: tests of different
// packages call it against the same cluster.
func (c *Cluster) InstallCRDs(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := ApplyCRDs(ctx, c.RestConfig(t), filepath.Join(RepoRoot(t), "build", "yamls", "crds")); err != nil {
		t.Fatalf("install CRDs: %v", err)
	}
}

// ApplyCRDs applies every CustomResourceDefinition found in the YAML files of dir (server-side
// apply, so it creates or updates) and waits until each is Established and its resource answers a
// list. Programs that are not tests (benchmarks) use it directly.
func ApplyCRDs(ctx context.Context, cfg *rest.Config, dir string) error {
	crds, err := readCRDs(dir)
	if err != nil {
		return err
	}
	if len(crds) == 0 {
		return fmt.Errorf("no CustomResourceDefinition in %s", dir)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("dynamic client: %w", err)
	}
	for _, crd := range crds {
		_, err := dyn.Resource(crdResource).Apply(ctx, crd.GetName(), crd,
			metav1.ApplyOptions{FieldManager: crdFieldManager, Force: true})
		if err != nil {
			return fmt.Errorf("apply CRD %s: %w", crd.GetName(), err)
		}
	}
	for _, crd := range crds {
		if err := waitServed(ctx, dyn, crd); err != nil {
			return err
		}
	}
	return nil
}

// readCRDs decodes every CustomResourceDefinition document of the YAML files in dir.
func readCRDs(dir string) ([]*unstructured.Unstructured, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var crds []*unstructured.Unstructured
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var obj map[string]any
			if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			u := &unstructured.Unstructured{Object: obj}
			if obj != nil && u.GetKind() == "CustomResourceDefinition" {
				crds = append(crds, u)
			}
		}
	}
	return crds, nil
}

// waitServed waits until a CRD reports Established and every served version answers a list.
func waitServed(ctx context.Context, dyn dynamic.Interface, crd *unstructured.Unstructured) error {
	name := crd.GetName()
	group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
	plural, _, _ := unstructured.NestedString(crd.Object, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
	var lastErr error
	for {
		lastErr = established(ctx, dyn, name)
		if lastErr == nil {
			for _, v := range versions {
				vm, _ := v.(map[string]any)
				if served, _ := vm["served"].(bool); !served {
					continue
				}
				version, _ := vm["name"].(string)
				gvr := schema.GroupVersionResource{Group: group, Version: version, Resource: plural}
				if _, err := dyn.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1}); err != nil {
					lastErr = fmt.Errorf("list %s: %w", gvr, err)
					break
				}
			}
			if lastErr == nil {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("CRD %s not served: %w (last: %v)", name, ctx.Err(), lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func established(ctx context.Context, dyn dynamic.Interface, name string) error {
	obj, err := dyn.Resource(crdResource).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	conds, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		if cm["type"] == "Established" && cm["status"] == "True" {
			return nil
		}
	}
	var got []string
	for _, c := range conds {
		cm, _ := c.(map[string]any)
		got = append(got, fmt.Sprintf("%v=%v", cm["type"], cm["status"]))
	}
	return fmt.Errorf("CRD %s not Established yet (conditions: %s)", name, strings.Join(got, ", "))
}
