package chart

import (
	"slices"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// restartGrants are what the manager needs to restart the workloads bindings name.
var restartGrants = []string{
	"apps|daemonsets|get", "apps|daemonsets|list", "apps|daemonsets|patch",
	"apps|deployments|get", "apps|deployments|list", "apps|deployments|patch",
	"apps|statefulsets|get", "apps|statefulsets|list", "apps|statefulsets|patch",
	"argoproj.io|rollouts|get", "argoproj.io|rollouts|list", "argoproj.io|rollouts|patch",
}

// workloadGrants returns, per namespace ("" for cluster-wide), the grants on workloads that the
// rendered roles give the manager's ServiceAccount through their bindings.
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
			bound = bound || (s["kind"] == "ServiceAccount" && s["name"] == fullname && s["namespace"] == namespace)
		}
		roleKind, _, _ := unstructured.NestedString(b.Object, "roleRef", "kind")
		roleName, _, _ := unstructured.NestedString(b.Object, "roleRef", "name")
		var role *unstructured.Unstructured
		for _, o := range ofKind(objs, roleKind) {
			if o.GetName() == roleName && (roleKind == "ClusterRole" || o.GetNamespace() == b.GetNamespace()) {
				role = o
			}
		}
		if !bound || role == nil {
			continue
		}
		for _, g := range flatten(rulesOf(role.Object)) {
			if slices.Contains(restartGrants, g) {
				out[b.GetNamespace()] = append(out[b.GetNamespace()], g)
			}
		}
	}
	for ns := range out {
		slices.Sort(out[ns])
		out[ns] = slices.Compact(out[ns])
	}
	return out
}

// Restarting workloads is opt-in: by default the manager may not touch Deployments; with
// rolloutRestart.enabled it may restart them cluster-wide, or with watchNamespaces only in the
// watched namespaces.
func TestRolloutRestartPermissionIsOptIn(t *testing.T) {
	tests := map[string]struct {
		set  []string
		want map[string][]string
	}{
		"off by default":                        {want: map[string][]string{}},
		"off by default, namespaced":            {set: []string{"watchNamespaces={team-a,team-b}"}, want: map[string][]string{}},
		"on, cluster-wide":                      {set: []string{"rolloutRestart.enabled=true"}, want: map[string][]string{"": restartGrants}},
		"on, namespaced: the watched ones only": {set: []string{"rolloutRestart.enabled=true", "watchNamespaces={team-a,team-b}"}, want: map[string][]string{"team-a": restartGrants, "team-b": restartGrants}},
		"on, without RBAC":                      {set: []string{"rolloutRestart.enabled=true", "rbac.create=false"}, want: map[string][]string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := workloadGrants(t, render(t, release, namespace, tc.set...))
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

func TestRolloutRestartValueIsABoolean(t *testing.T) {
	if _, err := helm(t, "template", release, chartDir(), "--set", "rolloutRestart.enabled=maybe"); err == nil {
		t.Error("rolloutRestart.enabled=maybe was accepted")
	}
	if _, err := helm(t, "template", release, chartDir(), "--set", "rolloutRestart.enable=true"); err == nil {
		t.Error("the misspelt rolloutRestart.enable was accepted")
	}
}
