package samples_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/binding"
	"github.com/idptoken/idptoken-operator/internal/expiry"
	"github.com/idptoken/idptoken-operator/test/testenv"
)

// consumingNamespace is where the test applies config/samples/consuming.
const consumingNamespace = "consuming"

// sampleToken is what the samples' Secrets are rendered with: shaped like a GitHub token, which
// needs no escaping in a URL or a header.
const sampleToken = "gho_sample0123456789abcdefABCDEF"

// TestConsumingSamples checks the worked examples of docs/consuming.md against a real
// kube-apiserver: every object of config/samples/consuming is admitted (server-side dry run);
// each binding's Secret, rendered from its template as the operator renders it, is admitted
// too (the API server checks a dockerconfigjson); and each workload reads, the way the docs
// say keeps it current, keys its binding's Secret has (see checkConsumers).
func TestConsumingSamples(t *testing.T) {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		t.Skip("KUBEBUILDER_ASSETS is unset: this test runs a real kube-apiserver and etcd; " + testenv.AssetsHint("./test/samples/"))
	}
	dir := filepath.Join(testenv.RepoRoot(), "config", "samples", "consuming")
	files := sampleFiles(t, dir)
	c := startAPIServer(t)
	ctx := context.Background()

	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: consumingNamespace}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	objs := map[string][]*unstructured.Unstructured{}
	for _, f := range files {
		objs[f] = decodeFile(t, filepath.Join(dir, f))
		for _, o := range objs[f] {
			o.SetNamespace(consumingNamespace)
			if o.GetKind() == "ServiceAccount" { // for real: the workloads' Pods refer to it
				mustCreate(ctx, t, c, o)
			}
		}
	}

	for _, f := range files {
		var secrets []*corev1.Secret
		var bindings []*authv1alpha1.IdPTokenBinding
		var workloads []*unstructured.Unstructured
		for _, o := range objs[f] {
			if o.GetKind() == "ServiceAccount" {
				continue
			}
			admitted := o.DeepCopy()
			if err := c.Create(ctx, admitted, client.DryRunAll); err != nil {
				t.Errorf("%s: the API server refuses %s %s: %v", f, o.GetKind(), o.GetName(), err)
				continue
			}
			switch o.GetKind() {
			case "IdPTokenBinding":
				b := &authv1alpha1.IdPTokenBinding{}
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(admitted.Object, b); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				s := renderedSecret(t, f, b)
				if err := c.Create(ctx, s.DeepCopy(), client.DryRunAll); err != nil {
					t.Errorf("%s: the API server refuses the Secret %s that binding %s writes: %v", f, s.Name, b.Name, err)
				}
				bindings = append(bindings, b)
				secrets = append(secrets, s)
			default:
				workloads = append(workloads, o)
			}
		}
		if f == "service-account.yaml" {
			continue
		}
		if len(bindings) != 1 || len(workloads) == 0 {
			t.Errorf("%s has %d IdPTokenBindings and %d workloads, want one binding and the workloads that read its Secret", f, len(bindings), len(workloads))
			continue
		}
		checkConsumers(t, f, bindings[0], secrets[0], workloads)
	}
}

// renderedSecret is the Secret the operator writes for b with sampleToken (expiring in 2030).
func renderedSecret(t *testing.T, file string, b *authv1alpha1.IdPTokenBinding) *corev1.Secret {
	t.Helper()
	tok := &binding.Token{
		AccessToken: sampleToken,
		TokenType:   "bearer",
		Expiry:      expiry.Result{ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		Identity:    authv1alpha1.IdentityStatus{Provider: "sample", Connection: "sample"},
	}
	want, err := binding.DesiredTarget(b, tok)
	if err != nil {
		t.Fatalf("%s: binding %s's template does not render: %v", file, b.Name, err)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: b.Namespace, Name: b.Spec.Secret.Name, Labels: want.Labels, Annotations: want.Annotations},
		Type:       want.Type,
		Data:       want.Data,
	}
}

// sampleFiles are the YAML files of dir but kustomization.yaml, which must list every one of them.
func sampleFiles(t *testing.T, dir string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, p := range paths {
		if filepath.Base(p) != "kustomization.yaml" {
			files = append(files, filepath.Base(p))
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Resources []string `json:"resources"`
	}
	if err := yaml.Unmarshal(raw, &k); err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	slices.Sort(k.Resources)
	if len(files) == 0 || !slices.Equal(files, k.Resources) {
		t.Fatalf("the samples of %s are %v, its kustomization.yaml lists %v", dir, files, k.Resources)
	}
	return files
}

// decodeFile decodes every object of a YAML file.
func decodeFile(t *testing.T, path string) []*unstructured.Unstructured {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// startAPIServer starts kube-apiserver and etcd with the CRDs, for the test's duration.
func startAPIServer(t *testing.T) client.Client {
	t.Helper()
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
	return c
}
