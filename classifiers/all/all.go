// Package all lists every ecosystem classifier explicitly (no init()
// registration), in a stable order.
package all

import (
	"github.com/cafilprox/cafilprox/classifiers"
	"github.com/cafilprox/cafilprox/classifiers/cargo"
	"github.com/cafilprox/cafilprox/classifiers/cocoapods"
	"github.com/cafilprox/cafilprox/classifiers/composer"
	"github.com/cafilprox/cafilprox/classifiers/gomod"
	"github.com/cafilprox/cafilprox/classifiers/maven"
	"github.com/cafilprox/cafilprox/classifiers/npm"
	"github.com/cafilprox/cafilprox/classifiers/pypi"
	"github.com/cafilprox/cafilprox/classifiers/rubygems"
)

// Classifiers returns a new instance of every classifier.
func Classifiers() []classifiers.Classifier {
	return []classifiers.Classifier{
		npm.New(),
		pypi.New(),
		gomod.New(),
		cargo.New(),
		rubygems.New(),
		maven.New(),
		composer.New(),
		cocoapods.New(),
	}
}
