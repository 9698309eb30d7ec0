package kustomize_test

import (
	"slices"
	"strings"
	"testing"
)

// writeVerbs are the verbs that change an object.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

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
	got["edit"] = append(got["edit"], got["view"]...)
	got["admin"] = append(got["admin"], got["edit"]...)
	for role, grants := range got {
		slices.Sort(grants)
		got[role] = slices.Compact(grants)
	}

	grantsOf := func(resources, verbs []string) (out []string) {
		for _, r := range resources {
			for _, v := range verbs {
				out = append(out, "auth.idptoken.dev|"+r+"|"+v)
			}
		}
		return out
	}
	read := []string{"get", "list", "watch"}
	all := append(slices.Clone(read), writeVerbs...)
	// ClusterAuth0Tenants are aggregated into nothing: their viewer role is bound by hand.
	view := append(grantsOf([]string{"idptokenbindings", "auth0tenants"}, read),
		grantsOf([]string{"idptokenbindings/status", "auth0tenants/status"}, []string{"get"})...)
	edit := append(slices.Clone(view), grantsOf([]string{"idptokenbindings"}, all)...)
	admin := append(slices.Clone(edit), grantsOf([]string{"auth0tenants"}, all)...)
	want := map[string][]string{"view": view, "edit": edit, "admin": admin}

	for _, role := range []string{"view", "edit", "admin"} {
		var reported []string
		for _, g := range got[role] {
			parts := strings.Split(g, "|") // group|resource|verb
			group, resource, verb := parts[0], parts[1], parts[2]
			if group == "*" || resource == "*" || verb == "*" {
				t.Errorf("%s gets a wildcard grant %s", role, g)
			}
			switch {
			case !slices.Contains(writeVerbs, verb):
				continue
			case strings.HasSuffix(resource, "/status"):
				t.Errorf("%s may %s %s: status is the operator's to write (it trusts status.identity)", role, verb, resource)
			case resource == "auth0tenants" && role != "admin":
				t.Errorf("%s may %s Auth0Tenants: only admin may, its author can send any Secret of the namespace anywhere", role, verb)
			case resource == "clusterauth0tenants":
				t.Errorf("%s may %s ClusterAuth0Tenants: a cluster administrator's decision", role, verb)
			case role == "view":
				t.Errorf("view may %s %s", verb, resource)
			default:
				continue
			}
			reported = append(reported, g)
		}
		for _, g := range want[role] {
			if !slices.Contains(got[role], g) {
				t.Errorf("%s lacks %s", role, g)
			}
		}
		for _, g := range got[role] {
			if !slices.Contains(want[role], g) && !slices.Contains(reported, g) {
				t.Errorf("%s gets %s, which docs/security.md does not give it", role, g)
			}
		}
	}
}
