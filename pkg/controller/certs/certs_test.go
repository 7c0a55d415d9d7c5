package certs

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestGeneratedCertificateIsTrustedThroughTheCAForEveryName(t *testing.T) {
	now := time.Now()
	bundle, err := Generate(ServiceNames("kube-system", "antrea-controller"), now)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(bundle.CAPEM) {
		t.Fatal("CA PEM does not parse")
	}
	cert, err := bundle.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{
		"antrea-controller.kube-system.svc",
		"antrea-controller.kube-system.svc.cluster.local",
		"antrea-controller.kube-system",
		"127.0.0.1",
		"::1",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: pool, CurrentTime: now,
				KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if err != nil {
				t.Errorf("verify for %s: %v", name, err)
			}
		})
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "other.kube-system.svc", Roots: pool, CurrentTime: now}); err == nil {
		t.Error("certificate verified for a name it does not carry")
	}
}

func TestGenerateRefusesACertificateWithoutNames(t *testing.T) {
	if _, err := Generate(Names{}, time.Now()); err == nil {
		t.Fatal("generated a certificate that names nothing")
	}
}

func TestEachGenerationMakesANewCA(t *testing.T) {
	names := ServiceNames("ns", "svc")
	a, err := Generate(names, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Generate(names, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if string(a.CAPEM) == string(b.CAPEM) {
		t.Fatal("two generations returned the same CA")
	}
}

func TestWrittenBundleLoadsBackAndServesTLS(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	bundle, err := Generate(ServiceNames("ns", "svc"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := bundle.Write(dir); err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", info.Mode().Perm())
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := loaded.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(loaded.CAPEM)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	resp, err := client.Get("https://127.0.0.1:" + port + "/")
	if err != nil {
		t.Fatalf("TLS request with the loaded CA: %v", err)
	}
	resp.Body.Close()
}

func TestLoadWithoutCAFileLeavesTheCAEmpty(t *testing.T) {
	dir := t.TempDir()
	bundle, err := Generate(ServiceNames("ns", "svc"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	bundle.CAPEM = nil
	if err := bundle.Write(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.CAPEM) != 0 {
		t.Fatalf("CA = %q, want empty", loaded.CAPEM)
	}
}

func TestLoadFailsOnAMissingKey(t *testing.T) {
	dir := t.TempDir()
	bundle, err := Generate(ServiceNames("ns", "svc"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, CertFile), bundle.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err == nil {
		t.Fatal("loaded a certificate without its key")
	}
}
