package kustomize_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/idptoken/idptoken-operator/test/testenv"
)

// restartGrants are what the manager needs to restart the workloads bindings name.
var restartGrants = []string{
	"apps|daemonsets|get", "apps|daemonsets|list", "apps|daemonsets|patch",
	"apps|deployments|get", "apps|deployments|list", "apps|deployments|patch",
	"apps|statefulsets|get", "apps|statefulsets|list", "apps|statefulsets|patch",
	"argoproj.io|rollouts|get", "argoproj.io|rollouts|list", "argoproj.io|rollouts|patch",
}

// Restarting workloads is opt-in with kustomize too: the overlays as shipped grant nothing on
// workloads; uncommenting the lines their kustomization.yaml names grants it cluster-wide
// (config/default) or in the watched namespace only (config/namespaced).
func TestRolloutRestartPermissionIsOptIn(t *testing.T) {
	tests := map[string]struct {
		overlay   string
		uncomment []string // lines of <overlay>/kustomization.yaml to uncomment
		want      map[string][]string
	}{
		"default, as shipped":    {overlay: "default", want: map[string][]string{}},
		"namespaced, as shipped": {overlay: "namespaced", want: map[string][]string{}},
		"default, with the component": {overlay: "default", uncomment: []string{"#components:", "#- ../rollout-restart"},
			want: map[string][]string{"": restartGrants}},
		"namespaced, with rollout_restart.yaml": {overlay: "namespaced", uncomment: []string{"#- rollout_restart.yaml"},
			want: map[string][]string{"team-a": restartGrants}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := copyConfig(t)
			kust := filepath.Join(dir, tc.overlay, "kustomization.yaml")
			data, err := os.ReadFile(kust)
			if err != nil {
				t.Fatal(err)
			}
			text := string(data)
			for _, line := range tc.uncomment {
				if !strings.Contains(text, "\n"+line+"\n") {
					t.Fatalf("config/%s/kustomization.yaml has no line %q to uncomment", tc.overlay, line)
				}
				text = strings.Replace(text, "\n"+line+"\n", "\n"+strings.TrimPrefix(line, "#")+"\n", 1)
			}
			if err := os.WriteFile(kust, []byte(text), 0o600); err != nil {
				t.Fatal(err)
			}
			got := workloadGrants(t, buildDir(t, filepath.Join(dir, tc.overlay)))
			if len(got) != len(tc.want) {
				t.Errorf("workload grants in %d scopes, want %d: %v", len(got), len(tc.want), got)
			}
			for ns, want := range tc.want {
				if !slices.Equal(got[ns], want) {
					t.Errorf("namespace %q: grants %v, want %v", ns, got[ns], want)
				}
			}
		})
	}
}

// copyConfig copies config/ into a temporary folder, to be edited there.
func copyConfig(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	src := filepath.Join(testenv.RepoRoot(), "config")
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	return dst
}

func buildDir(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	bin := filepath.Join(testenv.RepoRoot(), "bin", "kustomize")
	out, err := exec.Command(bin, "build", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kustomize build %s: %v\n%s", dir, err, out)
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(out), 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs
		} else if err != nil {
			t.Fatal(err)
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// workloadGrants returns, per namespace ("" for cluster-wide), the grants on workloads the
// manager's ServiceAccount gets through the rendered bindings.
func workloadGrants(t *testing.T, objs []*unstructured.Unstructured) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, b := range objs {
		if b.GetKind() != "RoleBinding" && b.GetKind() != "ClusterRoleBinding" {
			continue
		}
		subjects, _, _ := unstructured.NestedSlice(b.Object, "subjects")
		bound := false
		for _, s := range subjects {
			s := s.(map[string]any)
			bound = bound || (s["kind"] == "ServiceAccount" && s["name"] == "idptoken-controller-manager" && s["namespace"] == "idptoken-system")
		}
		kind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		name, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		for _, role := range objs {
			if !bound || role.GetKind() != kind || role.GetName() != name || (kind == "Role" && role.GetNamespace() != b.GetNamespace()) {
				continue
			}
			for _, r := range rulesOf(t, role) {
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						for _, v := range r.Verbs {
							if grant := g + "|" + res + "|" + v; slices.Contains(restartGrants, grant) {
								out[b.GetNamespace()] = append(out[b.GetNamespace()], grant)
							}
						}
					}
				}
			}
		}
	}
	for ns := range out {
		slices.Sort(out[ns])
		out[ns] = slices.Compact(out[ns])
	}
	return out
}
