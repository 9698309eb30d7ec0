package chart

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/idptoken/idptoken-operator/test/testenv"
)

const (
	release   = "idptoken"
	namespace = "idptoken-system"
	fullname  = "idptoken-idptoken-operator"
)

func TestChartLints(t *testing.T) {
	if out, err := helm(t, "lint", "--strict", "--kube-version", testenv.KubernetesVersion, chartDir()); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
}

func TestDefaultsMatchConfigDefault(t *testing.T) {
	objs := render(t, release, namespace)
	args := managerArgs(t, objs)
	for _, want := range []string{"--leader-elect", "--metrics-secure", "--metrics-bind-address=:8443", "--health-probe-bind-address=:8081",
		"--cluster-resource-namespace=" + namespace} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %v lack %s", args, want)
		}
	}
	dep := ofKind(objs, "Deployment")[0]
	checks := map[string]any{
		"spec.replicas": int64(1),
		"spec.template.spec.terminationGracePeriodSeconds":                               int64(60),
		"spec.template.spec.securityContext.runAsNonRoot":                                true,
		"spec.template.spec.containers[0].securityContext.readOnlyRootFilesystem":        true,
		"spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation":      false,
		"spec.template.spec.containers[0].livenessProbe.httpGet.path":                    "/healthz",
		"spec.template.spec.containers[0].readinessProbe.httpGet.path":                   "/readyz",
		"spec.template.spec.containers[0].securityContext.capabilities.drop[0]":          "ALL",
		"spec.template.spec.securityContext.seccompProfile.type":                         "RuntimeDefault",
		"spec.template.metadata.annotations.kubectl\\.kubernetes\\.io/default-container": "manager",
	}
	for path, want := range checks {
		if got := field(dep.Object, path); !reflect.DeepEqual(normalize(got), normalize(want)) {
			t.Errorf("Deployment %s = %#v, want %#v", path, got, want)
		}
	}
	for kind, want := range map[string]int{
		"PodDisruptionBudget": 0, "ServiceMonitor": 0, "PrometheusRule": 0, "NetworkPolicy": 0, "ConfigMap": 0,
		"Role": 1, "ClusterRoleBinding": 1, "ServiceAccount": 1, "Service": 1,
	} {
		if got := len(ofKind(objs, kind)); got != want {
			t.Errorf("%d %s rendered by default, want %d", got, kind, want)
		}
	}
	for _, crd := range ofKind(objs, "CustomResourceDefinition") {
		if crd.GetAnnotations()["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s lacks helm.sh/resource-policy: keep (crds.keep defaults to true)", crd.GetName())
		}
	}
}

func TestOptionalFeatures(t *testing.T) {
	tests := map[string]struct {
		set   []string
		check func(t *testing.T, objs []*unstructured.Unstructured)
	}{
		"replicas > 1 adds a PodDisruptionBudget": {
			set: []string{"replicaCount=3"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if len(ofKind(objs, "PodDisruptionBudget")) != 1 {
					t.Error("no PodDisruptionBudget")
				}
			},
		},
		"watchNamespaces grants Roles instead of a cluster-wide ClusterRole": {
			set: []string{"watchNamespaces={team-a,team-b}"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if !slices.Contains(managerArgs(t, objs), "--watch-namespace=team-a,team-b") {
					t.Error("no --watch-namespace")
				}
				for _, ns := range []string{"team-a", "team-b", namespace} {
					if !hasObject(objs, "Role", ns, fullname+"-manager") || !hasObject(objs, "RoleBinding", ns, fullname+"-manager") {
						t.Errorf("no manager Role and RoleBinding in %s", ns)
					}
				}
				cr := named(objs, "ClusterRole", fullname+"-manager")
				if cr == nil {
					t.Fatal("no ClusterRole for the cluster-scoped rules")
				}
				for _, r := range flatten(rulesOf(cr.Object)) {
					if strings.Contains(r, "|secrets|") || strings.Contains(r, "|idptokenbindings|") {
						t.Errorf("the ClusterRole still grants %s cluster-wide", r)
					}
				}
			},
		},
		"watchLabelSelector": {
			set: []string{"watchLabelSelector=sharding.idptoken.dev/shard=a"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if !slices.Contains(managerArgs(t, objs), "--watch-label-selector=sharding.idptoken.dev/shard=a") {
					t.Error("no --watch-label-selector")
				}
			},
		},
		"ServiceMonitor scrapes over HTTPS with a token": {
			set: []string{"metrics.serviceMonitor.enabled=true"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				sm := ofKind(objs, "ServiceMonitor")
				if len(sm) != 1 || field(sm[0].Object, "spec.endpoints[0].scheme") != "https" {
					t.Errorf("ServiceMonitor: %v", sm)
				}
			},
		},
		"insecure metrics": {
			set: []string{"metrics.secure=false", "metrics.port=8080", "metrics.serviceMonitor.enabled=true"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				args := managerArgs(t, objs)
				if slices.Contains(args, "--metrics-secure") || !slices.Contains(args, "--metrics-bind-address=:8080") {
					t.Errorf("args %v", args)
				}
				if named(objs, "ClusterRole", fullname+"-metrics-reader") != nil {
					t.Error("metrics-reader ClusterRole without secure metrics")
				}
				if got := field(ofKind(objs, "ServiceMonitor")[0].Object, "spec.endpoints[0].scheme"); got != "http" {
					t.Errorf("ServiceMonitor scheme %v", got)
				}
			},
		},
		"PrometheusRule carries the alert rules": {
			set: []string{"metrics.prometheusRule.enabled=true"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				pr := ofKind(objs, "PrometheusRule")
				if len(pr) != 1 {
					t.Fatal("no PrometheusRule")
				}
				groups, _, _ := unstructured.NestedSlice(pr[0].Object, "spec", "groups")
				if len(groups) == 0 {
					t.Error("PrometheusRule has no rule groups")
				}
			},
		},
		"Grafana dashboard ConfigMap": {
			set: []string{"metrics.grafanaDashboard.enabled=true"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				cm := ofKind(objs, "ConfigMap")
				if len(cm) != 1 || cm[0].GetLabels()["grafana_dashboard"] != "1" {
					t.Fatalf("dashboard ConfigMap: %v", cm)
				}
				want, err := os.ReadFile(filepath.Join(chartDir(), "files", "dashboards", "idptoken-operator.json"))
				if err != nil {
					t.Fatal(err)
				}
				if got := field(cm[0].Object, "data.idptoken-operator\\.json"); strings.TrimSpace(got.(string)) != strings.TrimSpace(string(want)) {
					t.Error("the ConfigMap does not hold the dashboard file")
				}
			},
		},
		"NetworkPolicy": {
			set: []string{"networkPolicy.enabled=true"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if len(ofKind(objs, "NetworkPolicy")) != 1 {
					t.Error("no NetworkPolicy")
				}
			},
		},
		"CRDs disabled": {
			set: []string{"crds.enabled=false"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if n := len(ofKind(objs, "CustomResourceDefinition")); n != 0 {
					t.Errorf("%d CRDs rendered", n)
				}
			},
		},
		"CRDs not kept": {
			set: []string{"crds.keep=false"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				for _, crd := range ofKind(objs, "CustomResourceDefinition") {
					if _, ok := crd.GetAnnotations()["helm.sh/resource-policy"]; ok {
						t.Errorf("CRD %s is kept", crd.GetName())
					}
				}
			},
		},
		"no leader election, no RBAC": {
			set: []string{"leaderElection.enabled=false", "rbac.create=false"},
			check: func(t *testing.T, objs []*unstructured.Unstructured) {
				if slices.Contains(managerArgs(t, objs), "--leader-elect") {
					t.Error("--leader-elect still set")
				}
				for _, kind := range []string{"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} {
					if n := len(ofKind(objs, kind)); n != 0 {
						t.Errorf("%d %s with rbac.create=false", n, kind)
					}
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.check(t, render(t, release, namespace, tc.set...))
		})
	}
}

func TestValuesSchemaRejectsTypos(t *testing.T) {
	for _, set := range []string{"replicaCount=0", "metrcs.enabled=true", "logLevel=verbose", "crds.enabled=maybe"} {
		if _, err := helm(t, "template", release, chartDir(), "--kube-version", testenv.KubernetesVersion, "--set", set); err == nil {
			t.Errorf("--set %s was accepted", set)
		}
	}
}

// The chart's CRDs are the generated ones: same files (make chart-sync), and the same objects once rendered.
func TestCRDsAreTheGeneratedOnes(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no generated CRDs: %v", err)
	}
	copies, _ := filepath.Glob(filepath.Join(chartDir(), "files", "crds", "*.yaml"))
	if len(copies) != len(bases) {
		t.Errorf("the chart has %d CRD files, config/crd/bases %d: run make chart-sync", len(copies), len(bases))
	}
	rendered := ofKind(render(t, release, namespace), "CustomResourceDefinition")
	for _, base := range bases {
		want, _ := os.ReadFile(base)
		got, err := os.ReadFile(filepath.Join(chartDir(), "files", "crds", filepath.Base(base)))
		if err != nil || string(got) != string(want) {
			t.Errorf("dist/chart/files/crds/%s differs from config/crd/bases: run make chart-sync", filepath.Base(base))
		}
		crd := readYAML(t, base)
		name := field(crd, "metadata.name").(string)
		r := named(rendered, "CustomResourceDefinition", name)
		if r == nil {
			t.Errorf("CRD %s is not rendered", name)
			continue
		}
		if !reflect.DeepEqual(normalize(r.Object["spec"]), normalize(crd["spec"])) {
			t.Errorf("the rendered spec of CRD %s differs from config/crd/bases", name)
		}
	}
}

// The manager's rules are config/rbac/role.yaml's, cluster-wide or split between Roles and a ClusterRole.
func TestManagerRBACIsTheGeneratedRole(t *testing.T) {
	want := flatten(rulesOf(readYAML(t, filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))))
	if len(want) == 0 {
		t.Fatal("config/rbac/role.yaml has no rules")
	}
	objs := render(t, release, namespace)
	cr := named(objs, "ClusterRole", fullname+"-manager")
	if cr == nil {
		t.Fatal("no manager ClusterRole")
	}
	if got := rulesOf(cr.Object); !reflect.DeepEqual(normalize(got), normalize(rulesOf(readYAML(t, filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))))) {
		t.Errorf("the manager ClusterRole's rules differ from config/rbac/role.yaml:\n got %v\nwant %v", flatten(got), want)
	}

	objs = render(t, release, namespace, "watchNamespaces={team-a}")
	got := flatten(rulesOf(named(objs, "ClusterRole", fullname+"-manager").Object))
	for _, o := range ofKind(objs, "Role") {
		if o.GetNamespace() == "team-a" {
			got = append(got, flatten(rulesOf(o.Object))...)
		}
	}
	slices.Sort(got)
	if !slices.Equal(slices.Compact(got), want) {
		t.Errorf("with watchNamespaces the Role and ClusterRole grant\n%v\nwant config/rbac/role.yaml's\n%v", got, want)
	}
}

func hasObject(objs []*unstructured.Unstructured, kind, ns, name string) bool {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetNamespace() == ns && o.GetName() == name {
			return true
		}
	}
	return false
}

func rulesOf(obj map[string]any) []any {
	rules, _ := obj["rules"].([]any)
	return rules
}

// flatten turns rules into sorted, distinct "group|resource|verb" grants.
func flatten(rules []any) []string {
	var out []string
	for _, r := range rules {
		r := r.(map[string]any)
		for _, g := range stringList(r["apiGroups"]) {
			for _, res := range stringList(r["resources"]) {
				for _, v := range stringList(r["verbs"]) {
					out = append(out, g+"|"+res+"|"+v)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func stringList(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}

// normalize makes numbers comparable between YAML decoders (int64 vs float64).
func normalize(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case int64:
		return float64(v)
	case int:
		return float64(v)
	default:
		return v
	}
}

// field reads a dotted path with [i] indexes; "\\." escapes a dot inside a key.
func field(obj map[string]any, path string) any {
	var cur any = obj
	for _, part := range splitPath(path) {
		idx := -1
		if i := strings.Index(part, "["); i >= 0 && strings.HasSuffix(part, "]") {
			idx, _ = strconv.Atoi(part[i+1 : len(part)-1])
			part = part[:i]
		}
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[part]
		if idx >= 0 {
			s, ok := cur.([]any)
			if !ok || idx >= len(s) {
				return nil
			}
			cur = s[idx]
		}
	}
	return cur
}

func splitPath(path string) []string {
	var parts []string
	var b strings.Builder
	for i := 0; i < len(path); i++ {
		switch {
		case path[i] == '\\' && i+1 < len(path) && path[i+1] == '.':
			b.WriteByte('.')
			i++
		case path[i] == '.':
			parts = append(parts, b.String())
			b.Reset()
		default:
			b.WriteByte(path[i])
		}
	}
	return append(parts, b.String())
}
