package main

import (
	"context"
	"os"
	"path/filepath"
	"time"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/cache/s3"
	"github.com/cafilprox/cafilprox/config"
)

// openS3 opens the S3-compatible cache backend; keys fall back to the
// usual AWS environment variables so they need not sit in the file.
func openS3(cfg *config.Config) (cache.Store, error) {
	c := cfg.Cache.S3
	ak, sk := c.AccessKey, c.SecretKey
	if ak == "" {
		ak = os.Getenv("AWS_ACCESS_KEY_ID")
	}
	if sk == "" {
		sk = os.Getenv("AWS_SECRET_ACCESS_KEY")
	}
	spool := spoolDir(cfg)
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return s3.Open(ctx, s3.Config{
		Endpoint: c.Endpoint, Bucket: c.Bucket, Prefix: c.Prefix, Region: c.Region,
		AccessKey: ak, SecretKey: sk, Insecure: c.Insecure, CAFile: c.CAFile,
		TempDir: spool, CreateBucket: true,
	})
}

// spoolDir holds in-progress downloads for backends without a local
// directory of their own.
func spoolDir(cfg *config.Config) string { return filepath.Join(cfg.DataDir, "spool") }
