package kustomize_test

import (
	"strings"
	"testing"

	"github.com/idptoken/idptoken-operator/test/internal/rbaccheck"
)

// TestAggregatedRolesKeepAuth0TenantsToAdmin: the convenience ClusterRoles of config/rbac add
// reads of the operator's namespaced kinds to the built-in view role, writes of IdPTokenBindings
// to edit, writes of Auth0Tenants to admin only, and no write of status to anyone
// (docs/security.md, "What edit and admin may do").
func TestAggregatedRolesKeepAuth0TenantsToAdmin(t *testing.T) {
	// "group|resource|verb" grants of each built-in role through the aggregation labels. The
	// built-in view is itself aggregated into edit, and edit into admin.
	got := map[string][]string{}
	for _, o := range build(t, "default") {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		for _, role := range []string{"view", "edit", "admin"} {
			if o.GetLabels()["rbac.authorization.k8s.io/aggregate-to-"+role] != "true" {
				continue
			}
			for _, r := range rulesOf(t, o) {
				if len(r.NonResourceURLs) > 0 {
					t.Errorf("ClusterRole %s, aggregated into %s, grants non-resource URLs %v", o.GetName(), role, r.NonResourceURLs)
				}
				for _, g := range r.APIGroups {
					for _, res := range r.Resources {
						// Reading status comes with view; writing it is the operator's alone.
						if role != "view" && strings.Contains(res, "/") {
							t.Errorf("ClusterRole %s, aggregated into %s, grants %v on %s", o.GetName(), role, r.Verbs, res)
						}
						for _, v := range r.Verbs {
							got[role] = append(got[role], g+"|"+res+"|"+v)
						}
					}
				}
			}
		}
	}
	rbaccheck.Nest(got)
	// ClusterAuth0Tenants are aggregated into nothing: their viewer role is bound by hand.
	view := append(rbaccheck.GrantsOf([]string{"idptokenbindings", "auth0tenants"}, rbaccheck.Read),
		rbaccheck.GrantsOf([]string{"idptokenbindings/status", "auth0tenants/status"}, []string{"get"})...)
	rbaccheck.Check(t, got, rbaccheck.Want(view))
}
