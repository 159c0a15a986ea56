package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/dustin/go-humanize"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/cache/fs"
	"github.com/cafilprox/cafilprox/config"
)

func cacheDir(cfg *config.Config) string {
	if cfg.Cache.Dir != "" {
		return cfg.Path(cfg.Cache.Dir)
	}
	return filepath.Join(cfg.DataDir, "cache")
}

// openStore opens the configured cache backend.
func openStore(cfg *config.Config) (cache.Store, error) {
	switch cfg.Cache.Backend {
	case "s3":
		return openS3(cfg)
	default:
		dir := cacheDir(cfg)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		return fs.Open(dir)
	}
}

func parseSize(s string) (int64, error) {
	n, err := humanize.ParseBytes(s)
	return int64(n), err
}
