// Package certs provides the serving certificate of antrea-controller's HTTPS endpoint (admission
// webhook, health, metrics): either a CA and a serving certificate generated in memory at start
// (selfSignedCert: true, the default), whose CA the controller then injects into the webhook
// configuration's caBundle, or a certificate provided in files (for example by cert-manager).
//
// A generated CA lives in memory only: a restart makes a new CA and re-injects it, so no private
// key has to be stored anywhere. While the process runs, the Provider (provider.go) renews the
// serving certificate (valid for a year) when two thirds of its life have passed, and reads
// certificates given as files again when they change, so that neither ever expires in service.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// File names inside a certificate directory, as a kubernetes.io/tls Secret mounts them.
const (
	CertFile = "tls.crt"
	KeyFile  = "tls.key"
	CAFile   = "ca.crt"
)

// Validity of generated certificates. The CA outlives the serving certificate so that a clock
// skew between Nodes never makes the CA expire first.
const (
	caValidity      = 10 * 365 * 24 * time.Hour
	servingValidity = 365 * 24 * time.Hour
	// backdate covers clocks of the API server that run a little behind the controller's.
	backdate = time.Hour
)

// Bundle is a serving certificate with its key and the CA that signed it, all PEM encoded.
type Bundle struct {
	// CertPEM is the serving certificate (leaf first, then any intermediates).
	CertPEM []byte
	// KeyPEM is the serving certificate's private key.
	KeyPEM []byte
	// CAPEM is what a client must trust; empty when unknown (files without ca.crt).
	CAPEM []byte
}

// TLSCertificate parses the bundle's certificate and key.
func (b *Bundle) TLSCertificate() (tls.Certificate, error) {
	cert, err := tls.X509KeyPair(b.CertPEM, b.KeyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("parse serving certificate: %w", err)
	}
	return cert, nil
}

// Names are the subject alternative names of a serving certificate.
type Names struct {
	DNS []string
	IPs []net.IP
}

// ServiceNames returns the DNS names under which the Service namespace/name is reached from the
// API server, plus localhost, 127.0.0.1 and ::1 for URL-based registration on the local host.
func ServiceNames(namespace, name string) Names {
	return Names{
		DNS: []string{
			name,
			name + "." + namespace,
			name + "." + namespace + ".svc",
			name + "." + namespace + ".svc.cluster.local",
			"localhost",
		},
		IPs: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
}

// Generate makes a new CA and a serving certificate for names, signed by it, with the default
// lifetimes.
func Generate(names Names, now time.Time) (*Bundle, error) {
	ca, err := NewAuthority(now, caValidity)
	if err != nil {
		return nil, err
	}
	return ca.Issue(names, now, servingValidity)
}

// Authority is a generated CA, kept in memory only, that signs serving certificates.
type Authority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// NewAuthority makes a CA valid from now for lifetime.
func NewAuthority(now time.Time, lifetime time.Duration) (*Authority, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	caTemplate := &x509.Certificate{
		SerialNumber:          mustSerial(),
		Subject:               pkix.Name{CommonName: fmt.Sprintf("antrea-controller-ca@%d", now.Unix())},
		NotBefore:             now.Add(-backdate),
		NotAfter:              now.Add(lifetime),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("sign CA certificate: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &Authority{cert: caCert, key: caKey}, nil
}

// NotAfter is when the CA expires.
func (a *Authority) NotAfter() time.Time { return a.cert.NotAfter }

// CertPEM is the CA certificate, PEM encoded.
func (a *Authority) CertPEM() []byte { return pemCertificate(a.cert.Raw) }

// Issue signs a serving certificate for names, valid from now for lifetime (but never past the
// CA's own expiry).
func (a *Authority) Issue(names Names, now time.Time, lifetime time.Duration) (*Bundle, error) {
	if len(names.DNS) == 0 && len(names.IPs) == 0 {
		return nil, errors.New("generate serving certificate: no DNS name or IP address to certify")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate serving key: %w", err)
	}
	commonName := "antrea-controller"
	if len(names.DNS) > 0 {
		commonName = names.DNS[0]
	}
	notAfter := now.Add(lifetime)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	template := &x509.Certificate{
		SerialNumber: mustSerial(),
		Subject:      pkix.Name{CommonName: commonName},
		NotBefore:    now.Add(-backdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     names.DNS,
		IPAddresses:  names.IPs,
	}
	der, err := x509.CreateCertificate(rand.Reader, template, a.cert, &key.PublicKey, a.key)
	if err != nil {
		return nil, fmt.Errorf("sign serving certificate: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("encode serving key: %w", err)
	}
	return &Bundle{
		CertPEM: pemCertificate(der),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		CAPEM:   a.CertPEM(),
	}, nil
}

func mustSerial() *big.Int {
	// 128 random bits, as RFC 5280 recommends at least 64 bits of entropy; crypto/rand does not fail.
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		panic(fmt.Sprintf("read random serial number: %v", err))
	}
	return n
}

// Load reads tls.crt and tls.key from dir, and ca.crt when it is there.
func Load(dir string) (*Bundle, error) {
	b := &Bundle{}
	var err error
	if b.CertPEM, err = os.ReadFile(filepath.Join(dir, CertFile)); err != nil {
		return nil, fmt.Errorf("read serving certificate: %w", err)
	}
	if b.KeyPEM, err = os.ReadFile(filepath.Join(dir, KeyFile)); err != nil {
		return nil, fmt.Errorf("read serving key: %w", err)
	}
	b.CAPEM, err = os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	if _, err := b.TLSCertificate(); err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return b, nil
}

// Write stores the bundle in dir (tls.crt, tls.key readable by the owner only, ca.crt), so that
// an operator can inspect what the controller serves; the controller never reads them back.
func (b *Bundle) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create certificate directory: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode os.FileMode
	}{{CertFile, b.CertPEM, 0o644}, {KeyFile, b.KeyPEM, 0o600}, {CAFile, b.CAPEM, 0o644}} {
		if len(f.data) == 0 {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
	}
	return nil
}
