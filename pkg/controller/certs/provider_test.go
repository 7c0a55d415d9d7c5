package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func TestRenewAtIsTwoThirdsIntoTheLifetime(t *testing.T) {
	cases := []struct {
		name     string
		lifetime time.Duration
		want     time.Duration
	}{
		{"a one-year certificate is renewed after eight months", 360 * 24 * time.Hour, 240 * 24 * time.Hour},
		{"a nine-second certificate after six seconds", 9 * time.Second, 6 * time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := RenewAt(t0, t0.Add(tc.lifetime)).Sub(t0); got != tc.want {
				t.Errorf("renewed after %v, want %v", got, tc.want)
			}
		})
	}
}

func TestNeedsNewCA(t *testing.T) {
	year := 365 * 24 * time.Hour
	cases := []struct {
		name    string
		caLeft  time.Duration
		serving time.Duration
		want    bool
	}{
		{"a CA with nine years left signs another one-year certificate", 9 * year, year, false},
		{"a CA that would expire before the new certificate is replaced", year, year, true},
		{"a CA that would expire within the new certificate's renewal margin is replaced too", year + year/4, year, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := NeedsNewCA(t0.Add(tc.caLeft), t0, tc.serving); got != tc.want {
				t.Errorf("NeedsNewCA = %v, want %v", got, tc.want)
			}
		})
	}
}

func localNames() Names { return Names{IPs: []net.IP{net.IPv4(127, 0, 0, 1)}} }

// leaf is the certificate the provider serves now.
func leaf(t *testing.T, p *Provider) *x509.Certificate {
	t.Helper()
	c, err := p.GetCertificate(nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// verifies says whether the provider's certificate verifies against caBundle for 127.0.0.1.
func verifies(t *testing.T, p *Provider, caBundle []byte) error {
	t.Helper()
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caBundle) {
		t.Fatal("CA bundle does not parse")
	}
	_, err := leaf(t, p).Verify(x509.VerifyOptions{Roots: roots, DNSName: "127.0.0.1"})
	return err
}

func countPEM(data []byte) int {
	n := 0
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return n
		}
		n++
	}
}

type recorder struct {
	mu      sync.Mutex
	expiry  []time.Time
	reloads []error
}

func (r *recorder) ServingCertificate(t time.Time) {
	r.mu.Lock()
	r.expiry = append(r.expiry, t)
	r.mu.Unlock()
}
func (r *recorder) CertificateReload(err error) {
	r.mu.Lock()
	r.reloads = append(r.reloads, err)
	r.mu.Unlock()
}

func TestRunRenewsAGeneratedCertificateBeforeItExpires(t *testing.T) {
	rec := &recorder{}
	p, err := NewProvider(ProviderOptions{SelfSigned: true, Names: localNames(), Lifetimes: Lifetimes{Serving: 3 * time.Second}, Observer: rec})
	if err != nil {
		t.Fatal(err)
	}
	first := leaf(t, p)
	bundle := p.CABundle()
	ctx, cancel := context.WithCancel(t.Context())
	published := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Run(ctx, func(context.Context, []byte) error { published++; return nil })
	}()
	deadline := time.Now().Add(10 * time.Second)
	for leaf(t, p).SerialNumber.Cmp(first.SerialNumber) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the certificate was not renewed within 10s of a 3s lifetime")
		}
		time.Sleep(50 * time.Millisecond)
	}
	renewedAt := time.Now()
	cancel()
	<-done
	if renewedAt.After(first.NotAfter) {
		t.Errorf("renewed at %v, after the old certificate expired (%v)", renewedAt, first.NotAfter)
	}
	if err := verifies(t, p, bundle); err != nil {
		t.Errorf("the renewed certificate does not verify against the published CA bundle: %v", err)
	}
	if published != 0 {
		t.Errorf("the CA bundle was published %d times for a renewal under the same CA", published)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.expiry) < 2 || !rec.expiry[len(rec.expiry)-1].After(rec.expiry[0]) || len(rec.reloads) == 0 || rec.reloads[0] != nil {
		t.Errorf("observed expiries %v and reloads %v", rec.expiry, rec.reloads)
	}
}

func TestRotateCAPublishesBothCAsBeforeServingTheNewCertificate(t *testing.T) {
	p, err := NewProvider(ProviderOptions{SelfSigned: true, Names: localNames(), CAPropagation: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	oldBundle := p.CABundle()
	first := leaf(t, p)
	var publishedBundle []byte
	err = p.RotateCA(t.Context(), func(_ context.Context, bundle []byte) error {
		publishedBundle = bundle
		if leaf(t, p).SerialNumber.Cmp(first.SerialNumber) != 0 {
			t.Error("the new certificate was served before its CA was published")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if countPEM(publishedBundle) != 2 || !bytes.Contains(publishedBundle, bytes.TrimSpace(oldBundle)) {
		t.Errorf("published bundle holds %d certificates (the old CA included: %v), want the new and the old CA",
			countPEM(publishedBundle), bytes.Contains(publishedBundle, bytes.TrimSpace(oldBundle)))
	}
	if verifies(t, p, oldBundle) == nil {
		t.Error("the new certificate verifies against the old CA alone: the CA was not replaced")
	}
	if err := verifies(t, p, publishedBundle); err != nil {
		t.Errorf("the new certificate does not verify against the published bundle: %v", err)
	}
}

func TestRotateCAKeepsTheOldCertificateWhenPublishingFails(t *testing.T) {
	p, err := NewProvider(ProviderOptions{SelfSigned: true, Names: localNames()})
	if err != nil {
		t.Fatal(err)
	}
	first := leaf(t, p)
	err = p.RotateCA(t.Context(), func(context.Context, []byte) error { return errors.New("API server unreachable") })
	if err == nil {
		t.Fatal("RotateCA succeeded although the bundle could not be published")
	}
	if leaf(t, p).SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Error("a certificate of an unpublished CA is served")
	}
}

func writeBundle(t *testing.T, dir string, b *Bundle) {
	t.Helper()
	if err := b.Write(dir); err != nil {
		t.Fatal(err)
	}
}

func TestReloadServesChangedFilesAndKeepsTheOldOnesWhenHalfWritten(t *testing.T) {
	dir := t.TempDir()
	one, err := Generate(localNames(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeBundle(t, dir, one)
	p, err := NewProvider(ProviderOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	first := leaf(t, p)
	var published [][]byte
	publish := func(_ context.Context, b []byte) error { published = append(published, b); return nil }

	if changed, err := p.Reload(t.Context(), publish); changed || err != nil {
		t.Fatalf("unchanged files: changed=%v err=%v", changed, err)
	}

	two, err := Generate(localNames(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// The certificate is there, its key not yet: a mismatch, the old pair stays in service.
	if err := os.WriteFile(filepath.Join(dir, CertFile), two.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Reload(t.Context(), publish); err == nil {
		t.Error("a certificate with another certificate's key was accepted")
	}
	if leaf(t, p).SerialNumber.Cmp(first.SerialNumber) != 0 {
		t.Error("a half-written pair replaced the certificate in service")
	}

	writeBundle(t, dir, two)
	changed, err := p.Reload(t.Context(), publish)
	if !changed || err != nil {
		t.Fatalf("changed files: changed=%v err=%v", changed, err)
	}
	if err := verifies(t, p, two.CAPEM); err != nil {
		t.Errorf("the reloaded certificate is not the new one: %v", err)
	}
	if len(published) != 1 || !bytes.Equal(published[0], two.CAPEM) {
		t.Errorf("published %d bundles, want the new ca.crt once", len(published))
	}
}

func TestRunReloadsFilesWhenTheyChange(t *testing.T) {
	dir := t.TempDir()
	one, err := Generate(localNames(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeBundle(t, dir, one)
	p, err := NewProvider(ProviderOptions{Dir: dir, ReloadInterval: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go p.Run(ctx, func(context.Context, []byte) error { return nil })
	two, err := Generate(localNames(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	writeBundle(t, dir, two)
	deadline := time.Now().Add(5 * time.Second)
	for verifies(t, p, two.CAPEM) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the new files were not served within 5s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestOnChangeIsCalledForEveryNewCertificateButTheFirst(t *testing.T) {
	p, err := NewProvider(ProviderOptions{SelfSigned: true, Names: localNames(), CAPropagation: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	p.OnChange(func() { calls++ })
	if err := p.RotateServing(); err != nil {
		t.Fatal(err)
	}
	if err := p.RotateCA(t.Context(), func(context.Context, []byte) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("OnChange called %d times for two rotations, want 2", calls)
	}
}
