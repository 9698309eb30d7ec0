package testenv

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"
)

// The Makefile builds the control plane (make envtest-assets) and lints the chart at
// ENVTEST_K8S_VERSION, hack/build-envtest-assets.sh defaults to a version of its own, and the
// tests look for bin/k8s/<KubernetesVersion>-...: the three must agree.
func TestMakefilePinsKubernetesVersion(t *testing.T) {
	for _, c := range []struct{ file, pattern string }{
		{"Makefile", `(?m)^ENVTEST_K8S_VERSION \?= (\S+)\s*$`},
		{filepath.Join("hack", "build-envtest-assets.sh"), `(?m)^k8s_version=\$\{K8S_VERSION:-([^}]+)\}\s*$`},
	} {
		b, err := os.ReadFile(Path(c.file))
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(c.pattern).FindSubmatch(b)
		if m == nil {
			t.Errorf("%s: no line matches %s", c.file, c.pattern)
			continue
		}
		if got := string(m[1]); got != KubernetesVersion {
			t.Errorf("%s pins Kubernetes %s, testenv.KubernetesVersion is %s: change both", c.file, got, KubernetesVersion)
		}
	}
}

func TestRepoRoot(t *testing.T) {
	for _, p := range []string{"go.mod", "PROJECT", CRDDir()} {
		if !filepath.IsAbs(p) {
			p = Path(p)
		}
		if _, err := os.Stat(p); err != nil {
			t.Errorf("RepoRoot %s: %v", RepoRoot(), err)
		}
	}
}

func TestAssetsDir(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", "/somewhere/else")
	if got := AssetsDir(); got != "/somewhere/else" {
		t.Errorf("AssetsDir() = %s with KUBEBUILDER_ASSETS set, want /somewhere/else", got)
	}
	t.Setenv("KUBEBUILDER_ASSETS", "")
	if got, want := AssetsDir(), DefaultAssetsDir(); got != want {
		t.Errorf("AssetsDir() = %s with KUBEBUILDER_ASSETS empty, want %s", got, want)
	}
	if dir := filepath.Base(DefaultAssetsDir()); !regexp.MustCompile(`^` + regexp.QuoteMeta(KubernetesVersion) + `-[a-z0-9]+-[a-z0-9]+$`).MatchString(dir) {
		t.Errorf("DefaultAssetsDir() ends in %s, want %s-<GOOS>-<GOARCH>", dir, KubernetesVersion)
	}
	if env := Environment(); env.BinaryAssetsDirectory != DefaultAssetsDir() || len(env.CRDDirectoryPaths) != 1 || env.CRDDirectoryPaths[0] != CRDDir() || !env.ErrorIfCRDPathMissing {
		t.Errorf("Environment() = %+v, want the CRDs of %s (required) and the binaries of %s", env, CRDDir(), DefaultAssetsDir())
	}
}
