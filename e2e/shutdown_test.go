//go:build e2e

package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"net/http/httptest"
)

// TestGracefulShutdown: SIGTERM while a download streams through an
// intercepted tunnel lets that download finish, then the process exits 0.
func TestGracefulShutdown(t *testing.T) {
	const half = 64 << 10
	started, release := make(chan struct{}), make(chan struct{})
	slow := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(2*half))
		w.Write([]byte(strings.Repeat("a", half)))
		w.(http.Flusher).Flush()
		close(started)
		<-release
		w.Write([]byte(strings.Repeat("b", half)))
	}))
	defer slow.Close()
	caFile := filepath.Join(t.TempDir(), "slow-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: slow.Certificate().Raw}), 0o644)

	c, err := launchCafilprox("shutdown", func(cfg *strings.Builder) {
		fmt.Fprintf(cfg, "upstream_ca_file = %q\necosystem \"go\" { upstream = %q }\n", caFile, slow.URL)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.stop()

	proxyURL, _ := url.Parse(c.env["HTTPS_PROXY"])
	pemBytes, _ := os.ReadFile(c.env["NODE_EXTRA_CA_CERTS"])
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxyURL), TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get("https://proxy.golang.org/sumdb/sum.golang.org/slow")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// The cache holds back the last 32 KiB of a download until it is
	// verified, so read only the start before the upstream pauses.
	first := make([]byte, 16<<10)
	if _, err := io.ReadFull(resp.Body, first); err != nil {
		t.Fatalf("first bytes: %v", err)
	}
	<-started

	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once shutdown begins.
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, err := http.Get("http://" + c.admin + "/healthz")
		if err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("admin listener still accepting 5s after SIGTERM")
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(release)
	rest, err := io.ReadAll(resp.Body)
	if want := 2*half - len(first); err != nil || len(rest) != want || rest[len(rest)-1] != 'b' {
		t.Fatalf("in-flight download after SIGTERM: got %d bytes, err %v; want the remaining %d", len(rest), err, want)
	}
	done := make(chan error, 1)
	go func() { done <- c.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0\n%s", err, tail(c.logText(), 20))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("process did not exit within the shutdown grace period")
	}
	if !strings.Contains(c.logText(), "shutting down") {
		t.Errorf("log lacks the shutdown line:\n%s", tail(c.logText(), 10))
	}
}
