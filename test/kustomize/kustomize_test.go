// Package kustomize_test builds the kustomize overlays in config/ and applies what they render
// to a real API server, so that a broken overlay or a manifest the API server would refuse
// fails CI rather than a user's install.
package kustomize_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	"github.com/idptoken/idptoken-operator/test/testenv"
)

// build renders an overlay with the kustomize the Makefile installs into bin/.
func build(t *testing.T, overlay string) []*unstructured.Unstructured {
	t.Helper()
	bin := filepath.Join(testenv.RepoRoot(), "bin", "kustomize")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("kustomize not found at %s: run `make kustomize` (make test does)", bin)
	}
	out, err := exec.Command(bin, "build", filepath.Join(testenv.RepoRoot(), "config", overlay)).CombinedOutput()
	if err != nil {
		t.Fatalf("kustomize build config/%s: %v\n%s", overlay, err, out)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("decoding config/%s: %v", overlay, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func managerArgs(t *testing.T, objs []*unstructured.Unstructured) []string {
	t.Helper()
	d := find(objs, "Deployment", "idptoken-controller-manager")
	if d == nil {
		t.Fatal("no Deployment idptoken-controller-manager")
	}
	containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	args, _, _ := unstructured.NestedStringSlice(containers[0].(map[string]any), "args")
	return args
}

// grants tells whether rules allow verb on group/resource.
func grants(rules []rbacv1.PolicyRule, group, resource, verb string) bool {
	for _, r := range rules {
		if slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb) {
			return true
		}
	}
	return false
}

func rulesOf(t *testing.T, o *unstructured.Unstructured) []rbacv1.PolicyRule {
	t.Helper()
	var role rbacv1.ClusterRole // Role and ClusterRole share the rules field
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &role); err != nil {
		t.Fatal(err)
	}
	return role.Rules
}

func TestDefaultServesMetricsSecurelyAndWaitsForRefreshes(t *testing.T) {
	objs := build(t, "default")
	args := managerArgs(t, objs)
	for _, want := range []string{"--metrics-secure", "--metrics-bind-address=:8443", "--leader-elect"} {
		if !slices.Contains(args, want) {
			t.Errorf("manager args %v lack %s", args, want)
		}
	}
	var d appsv1.Deployment
	if err := k8sruntime.DefaultUnstructuredConverter.FromUnstructured(find(objs, "Deployment", "idptoken-controller-manager").Object, &d); err != nil {
		t.Fatal(err)
	}
	if grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds; grace == nil || *grace < 30 {
		t.Errorf("terminationGracePeriodSeconds = %v: too short for a refresh in flight to finish", grace)
	}
}

func TestNamespacedGrantsNoClusterWideSecretsButEverythingTheCodeUses(t *testing.T) {
	objs := build(t, "namespaced")
	if !slices.Contains(managerArgs(t, objs), "--watch-namespace=team-a") {
		t.Error("the namespaced overlay must set --watch-namespace")
	}
	var clusterRules, teamRules, homeRules []rbacv1.PolicyRule
	for _, o := range objs {
		switch {
		case o.GetKind() == "ClusterRole" && strings.HasPrefix(o.GetName(), "idptoken-manager"):
			clusterRules = append(clusterRules, rulesOf(t, o)...)
		case o.GetKind() == "Role" && o.GetNamespace() == "team-a":
			teamRules = append(teamRules, rulesOf(t, o)...)
		case o.GetKind() == "Role" && o.GetNamespace() == "idptoken-system" && o.GetName() != "idptoken-leader-election-role":
			homeRules = append(homeRules, rulesOf(t, o)...)
		}
	}
	if grants(clusterRules, "", "secrets", "get") || grants(clusterRules, "", "secrets", "list") {
		t.Error("a namespaced install must not grant Secrets cluster-wide")
	}
	if !grants(homeRules, "", "secrets", "create") {
		t.Error("the operator's namespace needs Secrets: ClusterAuth0Tenants' credentials and refresh state live there")
	}
	// Every permission the code's markers generate must be granted, in the namespace or cluster-wide.
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var generated rbacv1.ClusterRole
	if err := yaml.Unmarshal(raw, &generated); err != nil {
		t.Fatal(err)
	}
	for _, r := range generated.Rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				for _, v := range r.Verbs {
					if !grants(teamRules, g, res, v) && !grants(clusterRules, g, res, v) {
						t.Errorf("config/namespaced does not grant %s on %s.%s, which the manager uses (config/rbac/role.yaml)", v, res, g)
					}
				}
			}
		}
		for _, u := range r.NonResourceURLs {
			t.Errorf("unexpected non-resource URL %s in the generated role", u)
		}
	}
}

// TestOverlaysApplyToARealAPIServer applies both overlays' output with server-side apply.
func TestOverlaysApplyToARealAPIServer(t *testing.T) {
	env := &envtest.Environment{BinaryAssetsDirectory: testenv.AssetsDir()}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting envtest: %v", err)
	}
	defer func() { _ = env.Stop() }()
	scheme := k8sruntime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = apiextensionsv1.AddToScheme(scheme)
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, overlay := range []string{"default", "namespaced"} {
		objs := build(t, overlay)
		// Namespaces and CRDs first, then what lives in them.
		slices.SortStableFunc(objs, func(a, b *unstructured.Unstructured) int { return rank(a) - rank(b) })
		if overlay == "namespaced" {
			ns := &unstructured.Unstructured{}
			ns.SetAPIVersion("v1")
			ns.SetKind("Namespace")
			ns.SetName("team-a")
			objs = append([]*unstructured.Unstructured{ns}, objs...)
		}
		for _, o := range objs {
			if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner("kustomize-test"), client.ForceOwnership); err != nil {
				t.Errorf("config/%s: applying %s %s/%s: %v", overlay, o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
		}
	}
}

func rank(o *unstructured.Unstructured) int {
	switch o.GetKind() {
	case "Namespace":
		return 0
	case "CustomResourceDefinition":
		return 1
	}
	return 2
}
