package main

import (
	"errors"

	"github.com/cafilprox/cafilprox/cache"
	"github.com/cafilprox/cafilprox/config"
)

func openS3(cfg *config.Config) (cache.Store, error) {
	return nil, errors.New("cache: s3 backend not wired yet")
}
