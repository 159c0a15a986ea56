// Package e2e drives real package managers (npm, pnpm, yarn, pip, go,
// cargo, gem, bundler, mvn, composer) through a freshly built Cafilprox
// against fake registries that serve small but real packages in each
// registry's protocol. The tests carry the build tag e2e:
//
//	sudo bash e2e/install-clients.sh
//	go test -tags e2e -count=1 -timeout 30m ./e2e/...
//
// See README.md in this directory for what each test proves.
package e2e
