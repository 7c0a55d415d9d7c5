package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/podvlan/podvlan/internal/teststack"
	"github.com/podvlan/podvlan/pkg/apis/crd/v1beta1"
	"github.com/podvlan/podvlan/pkg/controller/controllertest"
	"github.com/podvlan/podvlan/pkg/controller/webhook"
)

// syncBuffer collects the process's output while it runs.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.buf.String() }

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestBinaryValidatesIPPoolsAndStopsOnSIGTERM builds the binary and runs it as a process against
// the local cluster with the flags the local setup uses.
func TestBinaryValidatesIPPoolsAndStopsOnSIGTERM(t *testing.T) {
	env := controllertest.Setup(t)
	cluster := teststack.LocalCluster(t)
	bin := filepath.Join(t.TempDir(), "antrea-controller")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	port := freePort(t)
	conf := filepath.Join(t.TempDir(), "antrea-controller.conf")
	// A grace period longer than the test: this process must release nothing of other tests.
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`featureGates: {AntreaIPAM: true}
apiPort: %d
ipPoolGC: {interval: 1h, gracePeriod: 24h}
`, port)), 0o600); err != nil {
		t.Fatal(err)
	}
	webhookName := env.Name("binary-test")
	certDir := filepath.Join(t.TempDir(), "certs")
	cmd := exec.Command(bin, "--config="+conf, "--kubeconfig="+cluster.Kubeconfig,
		"--bind-address=127.0.0.1", fmt.Sprintf("--webhook-url=https://127.0.0.1:%d", port),
		"--webhook-name="+webhookName, "--cert-dir="+certDir,
		"--ippool-selector="+controllertest.LabelKey+"="+env.RunID, "--v=2")
	var output syncBuffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	stopped := false // set once the exit was received from exited
	go func() { exited <- cmd.Wait() }()
	// With the process gone the configuration (failurePolicy Fail) would deny every write of this
	// test's pools, their cleanup included: it goes as soon as the process stops.
	unregister := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := env.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, webhookName, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete webhook configuration: %v", err)
		}
	}
	t.Cleanup(func() {
		unregister()
		if !stopped {
			_ = cmd.Process.Kill()
			if err := <-exited; err != nil {
				t.Logf("antrea-controller killed: %v", err)
			}
		}
		if t.Failed() {
			t.Logf("controller output:\n%s", output.String())
		}
	})

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	controllertest.Eventually(t, 60*time.Second, func() (bool, string) {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/readyz", port))
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, fmt.Sprintf("/readyz %d", resp.StatusCode)
	})
	for _, f := range []string{"tls.crt", "tls.key", "ca.crt"} {
		if _, err := os.Stat(filepath.Join(certDir, f)); err != nil {
			t.Errorf("--cert-dir: %v", err)
		}
	}

	subnet := env.FreeSubnet(t)
	outside := env.NewPool("binary", subnet, 0, v1beta1.IPRange{CIDR: netip.PrefixFrom(controllertest.Addr(subnet, 256), 26).String()})
	controllertest.Eventually(t, 30*time.Second, func() (bool, string) {
		_, err := env.CreatePool(t, outside)
		return err != nil && strings.Contains(err.Error(), webhook.WebhookName) && strings.Contains(err.Error(), "is not inside the subnet"),
			fmt.Sprintf("create of a pool with a range outside its subnet: %v", err)
	})
	env.MustCreatePool(t, env.NewPool("binary", subnet, 0, v1beta1.IPRange{CIDR: netip.PrefixFrom(subnet.Addr(), 26).String()}))

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		stopped = true
		unregister()
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("still running 30s after SIGTERM")
	}
	if !strings.Contains(output.String(), "antrea-controller stopped") {
		t.Errorf("no clean stop in the output:\n%s", output.String())
	}
}
