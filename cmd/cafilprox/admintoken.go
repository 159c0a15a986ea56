package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/cafilprox/cafilprox/config"
)

// adminTokenFile holds the admin API token Cafilprox generates when the
// configuration sets none, so the admin API is never open and the CLI on
// the same machine (`cafilprox cache stats`, `policy explain`…) can use it.
const adminTokenFile = "admin-token"

func adminTokenPath(cfg *config.Config) string { return filepath.Join(cfg.DataDir, adminTokenFile) }

// ensureAdminToken returns the configured token, else the generated one,
// creating it (mode 0600) on first use.
func ensureAdminToken(cfg *config.Config) (string, error) {
	if cfg.Admin.Token != "" {
		return cfg.Admin.Token, nil
	}
	if tok, err := readAdminToken(cfg); err == nil && tok != "" {
		return tok, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	b := make([]byte, 32)
	rand.Read(b)
	tok := hex.EncodeToString(b)
	f, err := os.OpenFile(adminTokenPath(cfg), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return readAdminToken(cfg) // another process won the race
	}
	if err != nil {
		return "", fmt.Errorf("admin token: %w", err)
	}
	if _, err := f.WriteString(tok + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("admin token: %w", err)
	}
	return tok, f.Close()
}

// adminTokenFor is the token the CLI presents: the configured one, else
// the generated one if the proxy created it ("" when neither exists).
func adminTokenFor(cfg *config.Config) string {
	if cfg.Admin.Token != "" {
		return cfg.Admin.Token
	}
	tok, _ := readAdminToken(cfg)
	return tok
}

func readAdminToken(cfg *config.Config) (string, error) {
	b, err := os.ReadFile(adminTokenPath(cfg))
	return strings.TrimSpace(string(b)), err
}
