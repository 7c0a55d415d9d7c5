package certs

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

// Lifetimes are the validities of generated certificates; the zero value means the defaults
// (a ten-year CA, one-year serving certificates). Tests shorten them to watch rotations happen.
type Lifetimes struct {
	CA      time.Duration
	Serving time.Duration
}

func (l Lifetimes) orDefaults() Lifetimes {
	if l.CA <= 0 {
		l.CA = caValidity
	}
	if l.Serving <= 0 {
		l.Serving = servingValidity
	}
	return l
}

// DefaultReloadInterval is how often certificate files are read again for changes. cert-manager
// renews a certificate when a third of its life is left, so a minute is always in time.
const DefaultReloadInterval = time.Minute

// DefaultCAPropagation is how long a new CA bundle is given to reach every API server (which
// watches webhook configurations) before a certificate signed by the new CA is served.
const DefaultCAPropagation = 30 * time.Second

// retryInterval paces attempts after a failed rotation, reload or publication.
const retryInterval = 5 * time.Second

// Observer is told what the Provider serves; the controller's metrics implement it.
type Observer interface {
	// ServingCertificate is called with the expiry of each certificate put into service.
	ServingCertificate(notAfter time.Time)
	// CertificateReload is called after each rotation or reload attempt.
	CertificateReload(err error)
}

// PublishFunc makes caBundle (PEM, one or more CAs) what the API server trusts for the webhook.
type PublishFunc func(ctx context.Context, caBundle []byte) error

// ProviderOptions configure a Provider.
type ProviderOptions struct {
	// Dir: with SelfSigned false, where tls.crt, tls.key and (optionally) ca.crt are read from;
	// with SelfSigned true, where the generated ones are written for inspection (optional).
	Dir string
	// SelfSigned generates a CA and a serving certificate for Names, and renews the serving
	// certificate when two thirds of its life have passed (the CA too, when it would not
	// outlive the next serving certificate).
	SelfSigned bool
	Names      Names
	Lifetimes  Lifetimes
	// ReloadInterval is how often files are checked for changes (DefaultReloadInterval when 0).
	ReloadInterval time.Duration
	// CAPropagation is the wait between publishing a new CA and serving a certificate signed by
	// it (DefaultCAPropagation when 0).
	CAPropagation time.Duration
	Observer      Observer
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// served is one certificate in service with what the API server must trust for it.
type served struct {
	cert     *tls.Certificate
	caPEM    []byte
	issued   time.Time // when it was generated (self-signed) or read (files)
	notAfter time.Time
	// ca signs renewals of a generated certificate.
	ca *Authority
	// files is the content it was read from, to notice changes.
	files [3][]byte
}

// Provider serves the controller's certificate and keeps it current: a generated certificate is
// renewed before it expires, certificates given as files (a Secret mounted by cert-manager, for
// example) are read again when they change. Connections pick the current certificate at their
// handshake (GetCertificate), so nothing restarts.
type Provider struct {
	opts     ProviderOptions
	current  atomic.Pointer[served]
	mu       sync.Mutex // serializes rotations
	onChange atomic.Pointer[func()]
}

// OnChange registers f to be called after each certificate put into service once the first one
// was: the controller closes idle connections then, so that clients meet the new certificate at
// their next request, while the old one is still valid, rather than when it expires.
func (p *Provider) OnChange(f func()) { p.onChange.Store(&f) }

// NewProvider creates the first certificate (or reads it) and returns the Provider serving it.
func NewProvider(opts ProviderOptions) (*Provider, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReloadInterval <= 0 {
		opts.ReloadInterval = DefaultReloadInterval
	}
	if opts.CAPropagation <= 0 {
		opts.CAPropagation = DefaultCAPropagation
	}
	opts.Lifetimes = opts.Lifetimes.orDefaults()
	p := &Provider{opts: opts}
	var s *served
	var err error
	if opts.SelfSigned {
		s, err = p.generate(nil)
	} else {
		if opts.Dir == "" {
			return nil, errors.New("serving certificate: no directory with tls.crt and tls.key")
		}
		s, err = readFiles(opts.Dir, opts.Now())
	}
	if err != nil {
		return nil, err
	}
	p.put(s)
	return p, nil
}

// GetCertificate is tls.Config.GetCertificate: the certificate in service now.
func (p *Provider) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.current.Load().cert, nil
}

// CABundle is the PEM the API server must trust (empty for files without ca.crt).
func (p *Provider) CABundle() []byte { return p.current.Load().caPEM }

// NotAfter is when the certificate in service expires.
func (p *Provider) NotAfter() time.Time { return p.current.Load().notAfter }

func (p *Provider) put(s *served) {
	first := p.current.Swap(s) == nil
	if p.opts.Observer != nil {
		p.opts.Observer.ServingCertificate(s.notAfter)
	}
	if f := p.onChange.Load(); f != nil && !first {
		(*f)()
	}
}

// generate makes a serving certificate signed by ca, or by a new CA when ca is nil.
func (p *Provider) generate(ca *Authority) (*served, error) {
	now := p.opts.Now()
	var err error
	if ca == nil {
		if ca, err = NewAuthority(now, p.opts.Lifetimes.CA); err != nil {
			return nil, err
		}
	}
	b, err := ca.Issue(p.opts.Names, now, p.opts.Lifetimes.Serving)
	if err != nil {
		return nil, err
	}
	s, err := servedFrom(b, now)
	if err != nil {
		return nil, err
	}
	s.ca = ca
	if p.opts.Dir != "" {
		if err := b.Write(p.opts.Dir); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func servedFrom(b *Bundle, now time.Time) (*served, error) {
	cert, err := b.TLSCertificate()
	if err != nil {
		return nil, err
	}
	leaf, err := x509.ParseCertificate(cert.Certificate[0])
	if err != nil {
		return nil, fmt.Errorf("parse serving certificate: %w", err)
	}
	return &served{cert: &cert, caPEM: b.CAPEM, issued: now, notAfter: leaf.NotAfter}, nil
}

func readFiles(dir string, now time.Time) (*served, error) {
	b, err := Load(dir)
	if err != nil {
		return nil, err
	}
	s, err := servedFrom(b, now)
	if err != nil {
		return nil, err
	}
	s.files = [3][]byte{b.CertPEM, b.KeyPEM, b.CAPEM}
	return s, nil
}

// RenewAt is when a certificate issued at issued and expiring at notAfter is renewed: once two
// thirds of its life have passed, which leaves a third for retries after failures.
func RenewAt(issued, notAfter time.Time) time.Time {
	return issued.Add(notAfter.Sub(issued) * 2 / 3)
}

// NeedsNewCA says whether a CA expiring at caNotAfter is too old to sign a serving certificate
// issued at now for lifetime: the CA must outlive it, with the renewal margin to spare.
func NeedsNewCA(caNotAfter, now time.Time, lifetime time.Duration) bool {
	return caNotAfter.Before(now.Add(lifetime + lifetime/3))
}

// Run keeps the certificate current until ctx ends. publish is called with the new CA bundle
// whenever it changes: for a generated CA before any certificate it signed is served (the bundle
// then holds the old CA as well, so that both are trusted meanwhile); for files after the change
// was read (whoever wrote them is in charge of the order).
func (p *Provider) Run(ctx context.Context, publish PublishFunc) {
	for {
		wait := p.opts.ReloadInterval
		if p.opts.SelfSigned {
			s := p.current.Load()
			wait = RenewAt(s.issued, s.notAfter).Sub(p.opts.Now())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(max(wait, 0)):
		}
		var err error
		if p.opts.SelfSigned {
			err = p.rotate(ctx, publish)
		} else {
			var changed bool
			if changed, err = p.Reload(ctx, publish); !changed && err == nil {
				continue
			}
		}
		if p.opts.Observer != nil {
			p.opts.Observer.CertificateReload(err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			klog.ErrorS(err, "Could not renew the serving certificate; retrying", "retry", retryInterval)
			select {
			case <-ctx.Done():
				return
			case <-time.After(retryInterval):
			}
		}
	}
}

// rotate renews a generated certificate, with a new CA when the current one would not outlive
// the new certificate.
func (p *Provider) rotate(ctx context.Context, publish PublishFunc) error {
	s := p.current.Load()
	if s.ca != nil && NeedsNewCA(s.ca.NotAfter(), p.opts.Now(), p.opts.Lifetimes.Serving) {
		return p.RotateCA(ctx, publish)
	}
	return p.RotateServing()
}

// RotateServing replaces a generated serving certificate by a new one signed by the same CA; the
// CA bundle stays as it is.
func (p *Provider) RotateServing() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.current.Load()
	if old.ca == nil {
		return errors.New("rotate serving certificate: it was not generated here")
	}
	s, err := p.generate(old.ca)
	if err != nil {
		return fmt.Errorf("rotate serving certificate: %w", err)
	}
	p.put(s)
	klog.InfoS("Rotated the serving certificate", "notAfter", s.notAfter)
	return nil
}

// RotateCA replaces a generated CA and serving certificate: the new CA is published next to the
// old one and given CAPropagation to reach the API servers before the new certificate is served,
// so that the API server trusts whichever certificate a connection meets.
func (p *Provider) RotateCA(ctx context.Context, publish PublishFunc) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.current.Load()
	if old.ca == nil {
		return errors.New("rotate CA: the serving certificate was not generated here")
	}
	s, err := p.generate(nil)
	if err != nil {
		return fmt.Errorf("rotate CA: %w", err)
	}
	// Trust both until the old certificate is gone: connections still use it meanwhile.
	s.caPEM = joinPEM(s.caPEM, old.ca.CertPEM())
	if err := publish(ctx, s.caPEM); err != nil {
		return fmt.Errorf("rotate CA: publish the new CA bundle: %w", err)
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(p.opts.CAPropagation):
	}
	p.put(s)
	klog.InfoS("Rotated the CA and the serving certificate", "notAfter", s.notAfter, "caNotAfter", s.ca.NotAfter())
	return nil
}

// Reload reads the certificate files again and serves them when they changed and are valid; a
// half-written set (a certificate without its key) is an error and the old one stays.
func (p *Provider) Reload(ctx context.Context, publish PublishFunc) (changed bool, _ error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	old := p.current.Load()
	s, err := readFiles(p.opts.Dir, p.opts.Now())
	if err != nil {
		return false, fmt.Errorf("reload serving certificate: %w", err)
	}
	if sameFiles(s.files, old.files) {
		return false, nil
	}
	p.put(s)
	klog.InfoS("Reloaded the serving certificate", "dir", p.opts.Dir, "notAfter", s.notAfter)
	if !bytes.Equal(s.caPEM, old.caPEM) && len(s.caPEM) > 0 {
		if err := publish(ctx, s.caPEM); err != nil {
			return true, fmt.Errorf("publish the CA bundle of %s: %w", p.opts.Dir, err)
		}
	}
	return true, nil
}

func sameFiles(a, b [3][]byte) bool {
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

func joinPEM(blocks ...[]byte) []byte {
	var out []byte
	for _, b := range blocks {
		out = append(out, bytes.TrimSpace(b)...)
		out = append(out, '\n')
	}
	return out
}

// pemCertificate encodes a DER certificate.
func pemCertificate(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
