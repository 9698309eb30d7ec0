package chart

import (
	"strings"
	"testing"

	"github.com/idptoken/idptoken-operator/test/internal/rbaccheck"
)

// aggregated returns the "group|resource|verb" grants the chart adds to the built-in view, edit and
// admin ClusterRoles through their aggregation labels. The built-in view is itself aggregated into
// edit, and edit into admin, so edit holds view's grants and admin holds edit's.
func aggregated(t *testing.T, set ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, o := range ofKind(render(t, release, namespace, set...), "ClusterRole") {
		for _, role := range []string{"view", "edit", "admin"} {
			if o.GetLabels()["rbac.authorization.k8s.io/aggregate-to-"+role] != "true" {
				continue
			}
			for _, r := range rulesOf(o.Object) {
				r := r.(map[string]any)
				if urls := r["nonResourceURLs"]; urls != nil {
					t.Errorf("ClusterRole %s, aggregated into %s, grants non-resource URLs %v", o.GetName(), role, urls)
				}
				// A role for edit or admin must not name a subresource at all: reading status
				// comes with view, and writing it is the operator's alone.
				if res, _ := r["resources"].([]any); role != "view" {
					for _, res := range res {
						if strings.Contains(res.(string), "/") {
							t.Errorf("ClusterRole %s, aggregated into %s, grants %v on %s", o.GetName(), role, r["verbs"], res)
						}
					}
				}
			}
			out[role] = append(out[role], flatten(rulesOf(o.Object))...)
		}
	}
	rbaccheck.Nest(out)
	return out
}

// TestAggregatedRolesKeepAuth0TenantsToAdmin: view reads the operator's kinds, edit writes
// IdPTokenBindings only, admin Auth0Tenants too, and nobody but the operator writes status
// (docs/security.md, "What edit and admin may do").
func TestAggregatedRolesKeepAuth0TenantsToAdmin(t *testing.T) {
	got := aggregated(t)
	view := rbaccheck.GrantsOf([]string{"idptokenbindings", "idptokenbindings/status", "auth0tenants", "auth0tenants/status",
		"clusterauth0tenants", "clusterauth0tenants/status"}, rbaccheck.Read)
	rbaccheck.Check(t, got, rbaccheck.Want(view))

	for _, set := range []string{"rbac.aggregateToDefaultRoles=false", "rbac.create=false"} {
		if got := aggregated(t, set); len(got["admin"]) != 0 {
			t.Errorf("with %s the chart still aggregates %v", set, got["admin"])
		}
	}
}
