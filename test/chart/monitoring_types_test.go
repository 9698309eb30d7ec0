package chart

import (
	"os/exec"
	"path/filepath"
	"testing"

	// The Prometheus Operator's API types: controller-gen generates the ServiceMonitor and
	// PrometheusRule CRDs from them, so the API server validates the chart's objects of those kinds.
	_ "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

	"github.com/idptoken/idptoken-operator/test/testenv"
)

const monitoringTypes = "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"

// generateMonitoringCRDs writes the Prometheus Operator's CRDs, generated from its Go types with
// the repository's controller-gen, into a temporary folder.
func generateMonitoringCRDs(t *testing.T) string {
	t.Helper()
	gens, _ := filepath.Glob(filepath.Join(testenv.RepoRoot(), "bin", "controller-gen-*"))
	if len(gens) == 0 {
		t.Fatal("controller-gen not found in bin/: run `make controller-gen` (make test does)")
	}
	dir := t.TempDir()
	cmd := exec.Command(gens[0], "crd:maxDescLen=0", "paths="+monitoringTypes, "output:crd:dir="+dir)
	cmd.Dir = testenv.RepoRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("generating the Prometheus Operator CRDs: %v\n%s", err, out)
	}
	return dir
}
