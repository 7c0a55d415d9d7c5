package hack

import (
	"archive/tar"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestReleaseRefusesSomethingThatIsNotAVersion(t *testing.T) {
	out, code := run(t, append(os.Environ(), "VERSION=dev"), "./release.sh")
	if code == 0 || !strings.Contains(out, "VERSION must be a release version") {
		t.Errorf("release.sh with VERSION=dev: status %d\n%s", code, out)
	}
}

// tarFile returns the content of name inside the tar archive at path.
func tarFile(t *testing.T, path, name string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := tar.NewReader(f)
	for {
		h, err := r.Next()
		if err == io.EOF {
			t.Fatalf("%s has no %s", path, name)
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(h.Name, "./") == name {
			data, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			return data
		}
	}
}

type ociIndex struct {
	MediaType string `json:"mediaType"`
	Manifests []struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Platform    map[string]string `json:"platform"`
		Annotations map[string]string `json:"annotations"`
	} `json:"manifests"`
}

// A release of this machine's architecture only (the arm64 build takes minutes on a cold cache):
// the files, the images' names and content, and the version the binaries report.
func TestReleaseBuildsVersionedManifestsAndImages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the images: not with -short")
	}
	arch := strings.TrimSpace(string(must(exec.Command("go", "env", "GOARCH").Output())))
	const version = "0.0.0-test"
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(root, "_output/release", version)
	t.Cleanup(func() { os.RemoveAll(out) })
	log, code := run(t, append(os.Environ(), "VERSION="+version, "ARCHES="+arch, "IMAGE_REGISTRY=registry.test/pv"), "./release.sh")
	if code != 0 {
		t.Fatalf("release.sh: status %d\n%s", code, log)
	}
	manifest := string(must(os.ReadFile(filepath.Join(out, "antrea.yml"))))
	for _, want := range []string{"image: registry.test/pv/antrea-agent:" + version, "image: registry.test/pv/antrea-controller:" + version,
		`app.kubernetes.io/version: "` + version + `"`} {
		if !strings.Contains(manifest, want) {
			t.Errorf("antrea.yml lacks %q", want)
		}
	}
	crds := string(must(os.ReadFile(filepath.Join(out, "crds.yml"))))
	if strings.Count(crds, "kind: CustomResourceDefinition") != 3 || strings.Contains(crds, "kind: DaemonSet") {
		t.Errorf("crds.yml does not hold exactly the three CRDs (NetworkAttachmentDefinition, IPPool, IPPoolBlock)")
	}
	if _, err := os.Stat(filepath.Join(out, "kustomize/base/manifest/antrea.yml")); err != nil {
		t.Errorf("the kustomize base lacks the release's manifest: %v", err)
	}

	// The OCI layout: one tagged entry, an image index with this architecture's manifest.
	oci := filepath.Join(out, "images/antrea-agent.oci.tar")
	var top ociIndex
	if err := json.Unmarshal(tarFile(t, oci, "index.json"), &top); err != nil {
		t.Fatal(err)
	}
	if len(top.Manifests) != 1 || top.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != version {
		t.Fatalf("index.json %+v, want one entry tagged %s", top, version)
	}
	var inner ociIndex
	if err := json.Unmarshal(tarFile(t, oci, "blobs/sha256/"+strings.TrimPrefix(top.Manifests[0].Digest, "sha256:")), &inner); err != nil {
		t.Fatal(err)
	}
	if len(inner.Manifests) != 1 || inner.Manifests[0].Platform["architecture"] != arch {
		t.Errorf("image index %+v, want one %s manifest", inner, arch)
	}
	if skopeo, err := exec.LookPath("skopeo"); err == nil {
		if b, err := exec.Command(skopeo, "inspect", "--raw", "oci-archive:"+oci).CombinedOutput(); err != nil {
			t.Errorf("skopeo cannot read %s: %v\n%s", oci, err, b)
		}
	}

	// The binary in the agent image reports the release.
	archive := filepath.Join(out, "images/antrea-agent-linux-"+arch+".tar")
	layer := filepath.Join(t.TempDir(), "layer.tar")
	if err := os.WriteFile(layer, tarFile(t, archive, "layer.tar"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "antrea-agent")
	if err := os.WriteFile(bin, tarFile(t, layer, "usr/local/bin/antrea-agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	if v := string(must(exec.Command(bin, "--version").Output())); !strings.HasPrefix(v, "antrea-agent version "+version+" (revision ") {
		t.Errorf("antrea-agent --version = %q", v)
	}
	if _, code := run(t, os.Environ(), "bash", "-c", "cd "+out+" && sha256sum --quiet -c SHA256SUMS"); code != 0 {
		t.Error("SHA256SUMS does not match the files")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
