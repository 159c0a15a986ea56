package ca

import (
	"container/list"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// Leaf certificate lifetime and when to replace one: leaves are short-lived
// so a stolen leaf key is of little use, and are re-minted once two thirds
// of their life has passed so clients never see an expired one.
const (
	LeafValidity   = 7 * 24 * time.Hour
	leafRenewAfter = LeafValidity * 2 / 3
	leafBackdate   = time.Hour // tolerate client clock skew
)

// Issuer mints leaf certificates for intercepted hosts, signed by the CA.
// Leaves are cached in a bounded LRU; concurrent first requests for one host
// mint once.
type Issuer struct {
	ca  *CA
	max int

	mu    sync.Mutex
	lru   *list.List // of *leafEntry, most recent at front
	byKey map[string]*list.Element
	group singleflight.Group

	// OnMint, when set, is called after each new leaf (for metrics).
	OnMint func(host string, took time.Duration)
}

type leafEntry struct {
	host    string
	cert    *tls.Certificate
	renewAt time.Time
}

// NewIssuer returns an issuer keeping at most max leaves (default 10,000).
func NewIssuer(c *CA, max int) *Issuer {
	if max <= 0 {
		max = 10000
	}
	return &Issuer{ca: c, max: max, lru: list.New(), byKey: map[string]*list.Element{}}
}

// Leaf returns a certificate for host (a DNS name or IP address).
func (is *Issuer) Leaf(host string) (*tls.Certificate, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if host == "" {
		return nil, fmt.Errorf("ca: no host name for leaf certificate")
	}
	t := now()
	is.mu.Lock()
	if el, ok := is.byKey[host]; ok {
		e := el.Value.(*leafEntry)
		if t.Before(e.renewAt) {
			is.lru.MoveToFront(el)
			is.mu.Unlock()
			return e.cert, nil
		}
	}
	is.mu.Unlock()

	v, err, _ := is.group.Do(host, func() (any, error) {
		start := now()
		cert, err := is.mint(host)
		if err != nil {
			return nil, err
		}
		if is.OnMint != nil {
			is.OnMint(host, now().Sub(start))
		}
		is.store(host, cert, start.Add(leafRenewAfter))
		return cert, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*tls.Certificate), nil
}

// Len reports how many leaves are cached.
func (is *Issuer) Len() int {
	is.mu.Lock()
	defer is.mu.Unlock()
	return is.lru.Len()
}

func (is *Issuer) store(host string, cert *tls.Certificate, renewAt time.Time) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if el, ok := is.byKey[host]; ok {
		el.Value = &leafEntry{host: host, cert: cert, renewAt: renewAt}
		is.lru.MoveToFront(el)
		return
	}
	is.byKey[host] = is.lru.PushFront(&leafEntry{host: host, cert: cert, renewAt: renewAt})
	for is.lru.Len() > is.max {
		old := is.lru.Back()
		is.lru.Remove(old)
		delete(is.byKey, old.Value.(*leafEntry).host)
	}
}

func (is *Issuer) mint(host string) (*tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: leaf key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	t := now()
	notAfter := t.Add(LeafValidity)
	if notAfter.After(is.ca.Cert.NotAfter) {
		notAfter = is.ca.Cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host, Organization: []string{"Cafilprox"}},
		NotBefore:    t.Add(-leafBackdate),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if ip := net.ParseIP(host); ip != nil {
		tmpl.IPAddresses = []net.IP{ip}
	} else {
		tmpl.DNSNames = []string{host}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, is.ca.Cert, &key.PublicKey, is.ca.Key)
	if err != nil {
		return nil, fmt.Errorf("ca: signing leaf for %s: %w", host, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	return &tls.Certificate{
		Certificate: [][]byte{der, is.ca.Cert.Raw},
		PrivateKey:  key,
		Leaf:        leaf,
	}, nil
}
