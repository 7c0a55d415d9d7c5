package main_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestTheShimStaysSmall keeps out of the shim the packages that made every CNI call of every Pod
// slower to start (pkg/cni/shim/wire.go says by how much).
func TestTheShimStaysSmall(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"google.golang.org/grpc", "google.golang.org/protobuf", "net/http", "crypto/tls", "k8s.io/"} {
			if dep == banned || strings.HasPrefix(dep, banned+"/") || (strings.HasSuffix(banned, "/") && strings.HasPrefix(dep, banned)) {
				t.Errorf("the antrea shim links %s", dep)
			}
		}
	}
}
