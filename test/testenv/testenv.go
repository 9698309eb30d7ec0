// Package testenv is the one place the tests and benchmarks find the repository's root, the
// envtest control plane (kube-apiserver, etcd, kubectl) and the Kubernetes version it is pinned
// to. It is a test helper: nothing of the manager imports it.
//
// It lives in test/ and not in test/internal/: the integration tests of internal/controller use
// it too, and Go lets no package outside test/ import test/internal/....
package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// KubernetesVersion is the version of the envtest control plane (kube-apiserver, kubectl) the
// tests run against, and the version the Helm chart is linted and rendered for. The Makefile's
// ENVTEST_K8S_VERSION pins the same version (TestMakefilePinsKubernetesVersion checks).
const KubernetesVersion = "1.37.2"

// RepoRoot is the root of this repository's checkout: the folder of go.mod.
func RepoRoot() string { return root() }

var root = sync.OnceValue(func() string {
	// This file's folder, two levels down; with -trimpath there is no such folder, and the
	// nearest go.mod above the working directory (a test's package folder) is the root.
	if _, file, _, ok := runtime.Caller(0); ok {
		root := filepath.Join(filepath.Dir(file), "..", "..")
		if isRoot(root) {
			return root
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		panic(fmt.Sprintf("testenv: %v", err))
	}
	for d := dir; ; d = filepath.Dir(d) {
		if isRoot(d) {
			return d
		}
		if filepath.Dir(d) == d {
			panic(fmt.Sprintf("testenv: no go.mod in %s or above it", dir))
		}
	}
})

func isRoot(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "go.mod"))
	return err == nil
}

// Path is a path in the repository: RepoRoot joined with elem.
func Path(elem ...string) string {
	return filepath.Join(append([]string{RepoRoot()}, elem...)...)
}

// CRDDir is config/crd/bases, the generated CRDs.
func CRDDir() string { return Path("config", "crd", "bases") }

// AssetsDir is where kube-apiserver, etcd and kubectl are: KUBEBUILDER_ASSETS when it is set,
// else DefaultAssetsDir.
func AssetsDir() string {
	if d := os.Getenv("KUBEBUILDER_ASSETS"); d != "" {
		return d
	}
	return DefaultAssetsDir()
}

// DefaultAssetsDir is the folder `make envtest-assets` builds the control plane into:
// bin/k8s/<KubernetesVersion>-<GOOS>-<GOARCH>.
func DefaultAssetsDir() string {
	return Path("bin", "k8s", fmt.Sprintf("%s-%s-%s", KubernetesVersion, runtime.GOOS, runtime.GOARCH))
}

// Environment is an envtest control plane with the repository's CRDs installed (an error if
// they are missing) and the binaries of AssetsDir. Set other fields before Start.
func Environment() *envtest.Environment {
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{CRDDir()},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: AssetsDir(),
	}
}

// AssetsHint tells how to run a test that needs the control plane, for the message of a test
// that skips without KUBEBUILDER_ASSETS; pkg is its package (e.g. ./test/samples/).
func AssetsHint(pkg string) string {
	return fmt.Sprintf("run it with `make test`, or `make envtest-assets` and then KUBEBUILDER_ASSETS=%s go test %s",
		DefaultAssetsDir(), pkg)
}
