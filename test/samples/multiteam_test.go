// Package samples_test checks the worked examples of config/samples that the admission test of
// internal/controller does not see: config/samples/multi-team, against a real kube-apiserver.
package samples_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

// operatorNamespace is where config/default installs the operator, and where the sample puts
// the ClusterAuth0Tenant's credentials.
const operatorNamespace = "idptoken-system"

// TestMultiTeamSamples admits every object of config/samples/multi-team (server-side dry run
// after its namespaces exist), then checks that the teams' RBAC grants what its README says:
// each team manages its own bindings and reads only its own token Secret.
func TestMultiTeamSamples(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: this test runs a real kube-apiserver and etcd; " + testenv.AssetsHint("./test/samples/"))
	}
	repo := testenv.RepoRoot()
	env := testenv.Environment()
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting kube-apiserver and etcd: %v", err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	if err := authv1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	objs := readObjects(t, filepath.Join(repo, "config", "samples", "multi-team"))
	kinds := map[string]int{}
	for _, o := range objs {
		kinds[o.GetKind()]++
	}
	for kind, want := range map[string]int{"ClusterAuth0Tenant": 1, "IdPTokenBinding": 2, "Namespace": 2, "Role": 2, "RoleBinding": 2, "Secret": 1} {
		if kinds[kind] != want {
			t.Errorf("config/samples/multi-team has %d %s objects, want %d", kinds[kind], kind, want)
		}
	}

	// Namespaces first, for real (the operator's comes with config/default); then the rest,
	// server-side dry run, so that admission (schema, CEL rules) judges each object.
	ns := &unstructured.Unstructured{}
	ns.SetAPIVersion("v1")
	ns.SetKind("Namespace")
	ns.SetName(operatorNamespace)
	mustCreate(ctx, t, c, ns)
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			mustCreate(ctx, t, c, o)
		}
	}
	for _, o := range objs {
		if o.GetKind() == "Namespace" {
			continue
		}
		if err := c.Create(ctx, o.DeepCopy(), client.DryRunAll); err != nil {
			t.Errorf("the API server refuses %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}

	// The teams' RBAC, for real, then what it allows.
	for _, o := range objs {
		if o.GetKind() == "Role" || o.GetKind() == "RoleBinding" {
			mustCreate(ctx, t, c, o)
		}
	}
	cases := []struct {
		group, verb, resource, namespace, name string
		allowed                                bool
	}{
		{"team-a-developers", "create", "idptokenbindings", "team-a", "", true},
		{"team-a-developers", "patch", "idptokenbindings", "team-a", "alice-google", true},
		{"team-a-developers", "delete", "idptokenbindings", "team-a", "alice-google", true},
		{"team-a-developers", "get", "secrets", "team-a", "alice-google-token", true},
		{"team-a-developers", "get", "secrets", "team-a", "some-other-secret", false},
		{"team-a-developers", "list", "secrets", "team-a", "", false},
		{"team-a-developers", "update", "secrets", "team-a", "alice-google-token", false},
		{"team-a-developers", "create", "idptokenbindings", "team-b", "", false},
		{"team-a-developers", "get", "secrets", "team-b", "ci-bot-github-token", false},
		{"team-a-developers", "get", "secrets", operatorNamespace, "auth0-m2m", false},
		{"team-a-developers", "update", "clusterauth0tenants", "", "prod", false},
		{"team-b-developers", "create", "idptokenbindings", "team-b", "", true},
		{"team-b-developers", "get", "secrets", "team-b", "ci-bot-github-token", true},
		{"team-b-developers", "get", "secrets", "team-a", "alice-google-token", false},
		{"team-b-developers", "get", "secrets", operatorNamespace, "auth0-m2m", false},
	}
	for _, tc := range cases {
		group := "auth.idptoken.dev"
		if tc.resource == "secrets" {
			group = ""
		}
		sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
			User:   "developer@example.com",
			Groups: []string{tc.group, "system:authenticated"},
			ResourceAttributes: &authzv1.ResourceAttributes{
				Verb: tc.verb, Group: group, Resource: tc.resource, Namespace: tc.namespace, Name: tc.name,
			},
		}}
		if err := c.Create(ctx, sar); err != nil {
			t.Fatalf("SubjectAccessReview: %v", err)
		}
		if sar.Status.Allowed != tc.allowed {
			t.Errorf("%s may %s %s %s/%s: %v, want %v (%s)", tc.group, tc.verb, tc.resource, tc.namespace, tc.name,
				sar.Status.Allowed, tc.allowed, sar.Status.Reason)
		}
	}
}

// readObjects decodes every object of the *.yaml files of dir but its kustomization.yaml.
func readObjects(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var objs []*unstructured.Unstructured
	for _, f := range files {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
		for {
			u := &unstructured.Unstructured{}
			if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if len(u.Object) > 0 {
				objs = append(objs, u)
			}
		}
	}
	if len(objs) == 0 {
		t.Fatalf("no objects in %s", dir)
	}
	return objs
}

func mustCreate(ctx context.Context, t *testing.T, c client.Client, o *unstructured.Unstructured) {
	t.Helper()
	if err := c.Create(ctx, o.DeepCopy()); err != nil {
		t.Fatalf("creating %s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
	}
}
