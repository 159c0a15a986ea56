// Package ca manages Cafilprox's root certificate authority: creating it
// (ECDSA P-256, key file mode 0600), importing your own, exporting the
// certificate for distribution (PEM, DER, PKCS#12 trust store, a bundle of
// system roots plus the CA), and minting leaf certificates for intercepted
// hosts (see Issuer).
package ca

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

// File names inside the CA directory.
const (
	CertFile       = "ca.pem"
	KeyFile        = "ca-key.pem"
	BundleFile     = "ca-bundle.pem"  // system roots + our CA
	TrustStoreFile = "truststore.p12" // PKCS#12 trust store for Java
	TrustStorePass = "changeit"       // the JVM's conventional trust store password
	rootValidity   = 10 * 365 * 24 * time.Hour
)

var now = time.Now

// CA is a loaded root certificate authority.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Dir is the directory the CA files live in.
	Dir string
}

// LoadOrCreate loads the CA from dir, creating a new ECDSA P-256 root when
// none exists. created reports whether a new one was made.
func LoadOrCreate(dir string) (c *CA, created bool, err error) {
	c, err = Load(dir)
	if err == nil {
		return c, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, err
	}
	c, err = Create(dir)
	return c, err == nil, err
}

// Load reads ca.pem and ca-key.pem from dir.
func Load(dir string) (*CA, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, CertFile))
	if err != nil {
		return nil, fmt.Errorf("ca: reading certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, KeyFile))
	if err != nil {
		return nil, fmt.Errorf("ca: reading key: %w", err)
	}
	c, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	c.Dir = dir
	return c, nil
}

// Create makes a new root CA in dir, refusing to overwrite an existing key.
func Create(dir string) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca: generating key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   fmt.Sprintf("Cafilprox CA %s %x", host, serial.Bytes()[:4]),
			Organization: []string{"Cafilprox"},
		},
		NotBefore:             t.Add(-time.Hour),
		NotAfter:              t.Add(rootValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca: signing root: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	c := &CA{Cert: cert, Key: key, Dir: dir}
	if err := c.write(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})); err != nil {
		return nil, err
	}
	return c, nil
}

// Import installs an existing CA certificate and key (PEM files) into dir,
// replacing what is there.
func Import(dir, certFile, keyFile string) (*CA, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("ca: %w", err)
	}
	c, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if !c.Cert.IsCA {
		return nil, fmt.Errorf("ca: %s is not a CA certificate (basicConstraints CA:FALSE)", certFile)
	}
	c.Dir = dir
	keyBlock, _ := pem.Decode(keyPEM)
	if err := c.write(pem.EncodeToMemory(keyBlock)); err != nil {
		return nil, err
	}
	return c, nil
}

// write stores the key (0600, created before the certificate so a crash
// never leaves a certificate without its key) and the derived files.
func (c *CA) write(keyPEM []byte) error {
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(c.Dir, KeyFile), keyPEM, 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(c.Dir, CertFile), c.PEM(), 0o644); err != nil {
		return err
	}
	return c.WriteTrustFiles()
}

// WriteTrustFiles (re)writes the bundle (system roots + CA) and the PKCS#12
// trust store next to the certificate. They derive from public data only.
func (c *CA) WriteTrustFiles() error {
	bundle := append(SystemRootsPEM(), c.PEM()...)
	if err := writeFileAtomic(filepath.Join(c.Dir, BundleFile), bundle, 0o644); err != nil {
		return err
	}
	p12, err := c.TrustStore()
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(c.Dir, TrustStoreFile), p12, 0o644)
}

// PEM returns the CA certificate in PEM form.
func (c *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Cert.Raw})
}

// DER returns the CA certificate in DER form.
func (c *CA) DER() []byte { return c.Cert.Raw }

// TrustStore returns a PKCS#12 trust store holding the system roots and the
// CA certificate (javax.net.ssl.trustStore replaces the JVM's own roots, so
// non-registry hosts must stay trusted), protected by TrustStorePass as the
// JVM expects.
func (c *CA) TrustStore() ([]byte, error) {
	certs := []*x509.Certificate{c.Cert}
	rest := SystemRootsPEM()
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if cert, err := x509.ParseCertificate(b.Bytes); err == nil && b.Type == "CERTIFICATE" {
			certs = append(certs, cert)
		}
	}
	b, err := pkcs12.Modern2023.EncodeTrustStore(certs, TrustStorePass)
	if err != nil {
		return nil, fmt.Errorf("ca: encoding trust store: %w", err)
	}
	return b, nil
}

func parse(certPEM, keyPEM []byte) (*CA, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("ca: certificate file holds no PEM CERTIFICATE block")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca: parsing certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		// Never echo key material in errors.
		return nil, errors.New("ca: key file holds no PEM block")
	}
	key, err := parseKey(kb)
	if err != nil {
		return nil, err
	}
	if !publicKeysEqual(cert.PublicKey, key.Public()) {
		return nil, errors.New("ca: key does not match certificate")
	}
	return &CA{Cert: cert, Key: key}, nil
}

func parseKey(b *pem.Block) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("ca: unsupported key type")
	}
	if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("ca: key is not PKCS#8, EC or PKCS#1")
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := a.(equaler)
	return ok && e.Equal(b)
}

func randomSerial() (*big.Int, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("ca: serial: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

// writeFileAtomic writes via a temp file created with mode, fsyncs and
// renames, so readers never see a partial file and the key is never
// briefly world-readable.
func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("ca: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("ca: writing %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("ca: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("ca: %w", err)
	}
	return nil
}

// systemRootFiles is where Linux distributions and BSDs keep the trust
// bundle (the same list crypto/x509 searches).
var systemRootFiles = []string{
	"/etc/ssl/certs/ca-certificates.crt",
	"/etc/pki/tls/certs/ca-bundle.crt",
	"/etc/ssl/ca-bundle.pem",
	"/etc/pki/tls/cacert.pem",
	"/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
	"/etc/ssl/cert.pem",
	"/usr/local/etc/ssl/cert.pem",
}

// SystemRootsPEM returns the system trust bundle (honouring SSL_CERT_FILE
// unless it points at our own bundle), or nothing when none is found.
func SystemRootsPEM() []byte {
	files := systemRootFiles
	if f := os.Getenv("SSL_CERT_FILE"); f != "" && filepath.Base(f) != BundleFile {
		files = append([]string{f}, files...)
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil && len(b) > 0 {
			if b[len(b)-1] != '\n' {
				b = append(b, '\n')
			}
			return b
		}
	}
	return nil
}
