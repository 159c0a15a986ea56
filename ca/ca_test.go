package ca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"software.sslmate.com/src/go-pkcs12"
)

func TestCreateLoad(t *testing.T) {
	dir := t.TempDir()
	c, created, err := LoadOrCreate(dir)
	if err != nil || !created {
		t.Fatalf("LoadOrCreate: created=%v err=%v", created, err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Mode().Perm(); got != 0o600 {
		t.Errorf("key mode: got %o, want 600", got)
	}
	if _, ok := c.Cert.PublicKey.(*ecdsa.PublicKey); !ok || c.Cert.PublicKey.(*ecdsa.PublicKey).Curve != elliptic.P256() {
		t.Errorf("root key: got %T, want ECDSA P-256", c.Cert.PublicKey)
	}
	if !c.Cert.IsCA {
		t.Error("root is not a CA")
	}
	again, created, err := LoadOrCreate(dir)
	if err != nil || created {
		t.Fatalf("second LoadOrCreate: created=%v err=%v", created, err)
	}
	if !again.Cert.Equal(c.Cert) {
		t.Error("reloaded a different certificate")
	}
	for _, f := range []string{BundleFile, TrustStoreFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s not written: %v", f, err)
		}
	}
	bundle, _ := os.ReadFile(filepath.Join(dir, BundleFile))
	if !strings.HasSuffix(string(bundle), string(c.PEM())) {
		t.Error("bundle does not end with the CA certificate")
	}
}

func TestTrustStoreDecodes(t *testing.T) {
	c, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	p12, err := c.TrustStore()
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pkcs12.DecodeTrustStore(p12, TrustStorePass)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, cert := range certs {
		found = found || cert.Equal(c.Cert)
	}
	if !found {
		t.Fatalf("trust store of %d certificates lacks the CA", len(certs))
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Load(dir); err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("missing CA: got %v, want not-exist", err)
	}
	c, err := Create(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A key that belongs to another certificate is refused.
	other, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, _ := os.ReadFile(filepath.Join(other.Dir, KeyFile))
	os.WriteFile(filepath.Join(dir, KeyFile), keyPEM, 0o600)
	if _, err := Load(dir); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Errorf("mismatched key: got %v", err)
	}
	// Garbage never echoes key material.
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("secret-garbage"), 0o600)
	if _, err := Load(dir); err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("garbage key: got %v", err)
	}
	_ = c
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

func TestImport(t *testing.T) {
	src, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	c, err := Import(dst, filepath.Join(src.Dir, CertFile), filepath.Join(src.Dir, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Cert.Equal(src.Cert) {
		t.Error("imported a different certificate")
	}
	if st, _ := os.Stat(filepath.Join(dst, KeyFile)); st.Mode().Perm() != 0o600 {
		t.Errorf("imported key mode %o, want 600", st.Mode().Perm())
	}
	// A leaf (non-CA) certificate is refused.
	is := NewIssuer(src, 0)
	leaf, _ := is.Leaf("example.org")
	leafPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Certificate[0]})
	keyDER, _ := x509.MarshalPKCS8PrivateKey(leaf.PrivateKey)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	tmp := t.TempDir()
	os.WriteFile(filepath.Join(tmp, "c.pem"), leafPEM, 0o644)
	os.WriteFile(filepath.Join(tmp, "k.pem"), keyPEM, 0o600)
	if _, err := Import(t.TempDir(), filepath.Join(tmp, "c.pem"), filepath.Join(tmp, "k.pem")); err == nil {
		t.Error("importing a leaf: got nil error")
	}
}

func TestLeafVerifies(t *testing.T) {
	c, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	is := NewIssuer(c, 0)
	pool := x509.NewCertPool()
	pool.AddCert(c.Cert)
	for _, host := range []string{"registry.npmjs.org", "127.0.0.1", "::1"} {
		leaf, err := is.Leaf(host)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("%s: %v", host, err)
		}
	}
}

func TestLeafCacheSingleflightAndRenewal(t *testing.T) {
	c, err := Create(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	is := NewIssuer(c, 2)
	var mints atomic.Int32
	is.OnMint = func(string, time.Duration) { mints.Add(1) }
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := is.Leaf("pypi.org"); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if got := mints.Load(); got != 1 {
		t.Errorf("concurrent first requests minted %d leaves, want 1", got)
	}
	is.Leaf("a.example")
	is.Leaf("b.example")
	if got := is.Len(); got != 2 {
		t.Errorf("LRU size: got %d, want 2", got)
	}
	first, _ := is.Leaf("b.example")
	defer func() { now = time.Now }()
	now = func() time.Time { return time.Now().Add(leafRenewAfter + time.Minute) }
	renewed, _ := is.Leaf("b.example")
	if renewed == first {
		t.Error("leaf past its renewal time was not re-minted")
	}
}

func BenchmarkMintLeaf(b *testing.B) {
	c, err := Create(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	is := NewIssuer(c, 0)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if _, err := is.mint("registry.npmjs.org"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCachedLeaf(b *testing.B) {
	c, _ := Create(b.TempDir())
	is := NewIssuer(c, 0)
	is.Leaf("registry.npmjs.org")
	b.ReportAllocs()
	for b.Loop() {
		is.Leaf("registry.npmjs.org")
	}
}
