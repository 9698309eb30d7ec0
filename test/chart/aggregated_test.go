package chart

import (
	"slices"
	"strings"
	"testing"
)

// writeVerbs are the verbs that change an object.
var writeVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}

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
	out["edit"] = append(out["edit"], out["view"]...)
	out["admin"] = append(out["admin"], out["edit"]...)
	for role, grants := range out {
		slices.Sort(grants)
		out[role] = slices.Compact(grants)
	}
	return out
}

func grantsOf(resources, verbs []string) []string {
	var out []string
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, "auth.idptoken.dev|"+r+"|"+v)
		}
	}
	return out
}

// TestAggregatedRolesKeepAuth0TenantsToAdmin: view reads the operator's kinds, edit writes
// IdPTokenBindings only, admin Auth0Tenants too, and nobody but the operator writes status
// (docs/security.md, "What edit and admin may do").
func TestAggregatedRolesKeepAuth0TenantsToAdmin(t *testing.T) {
	got := aggregated(t)
	read := []string{"get", "list", "watch"}
	all := append(slices.Clone(read), writeVerbs...)
	view := grantsOf([]string{"idptokenbindings", "idptokenbindings/status", "auth0tenants", "auth0tenants/status",
		"clusterauth0tenants", "clusterauth0tenants/status"}, read)
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

	for _, set := range []string{"rbac.aggregateToDefaultRoles=false", "rbac.create=false"} {
		if got := aggregated(t, set); len(got["admin"]) != 0 {
			t.Errorf("with %s the chart still aggregates %v", set, got["admin"])
		}
	}
}
