// Package rbaccheck holds the checks of what the operator's aggregated ClusterRoles give the
// built-in view, edit and admin roles, shared by the kustomize and the Helm chart tests.
package rbaccheck

import (
	"slices"
	"strings"
	"testing"
)

// WriteVerbs are the verbs that change an object; Read the ones that read it.
var (
	WriteVerbs = []string{"create", "update", "patch", "delete", "deletecollection"}
	Read       = []string{"get", "list", "watch"}
)

// GrantsOf is every "auth.idptoken.dev|resource|verb" of resources × verbs.
func GrantsOf(resources, verbs []string) []string {
	var out []string
	for _, r := range resources {
		for _, v := range verbs {
			out = append(out, "auth.idptoken.dev|"+r+"|"+v)
		}
	}
	return out
}

// Nest adds view's grants to edit's and edit's to admin's, as the built-in roles aggregate each
// other, and sorts each list without repeats.
func Nest(got map[string][]string) {
	got["edit"] = append(got["edit"], got["view"]...)
	got["admin"] = append(got["admin"], got["edit"]...)
	for role, grants := range got {
		slices.Sort(grants)
		got[role] = slices.Compact(grants)
	}
}

// Want is what docs/security.md gives each built-in role, with view's grants given.
func Want(view []string) map[string][]string {
	all := append(slices.Clone(Read), WriteVerbs...)
	edit := append(slices.Clone(view), GrantsOf([]string{"idptokenbindings"}, all)...)
	admin := append(slices.Clone(edit), GrantsOf([]string{"auth0tenants"}, all)...)
	return map[string][]string{"view": view, "edit": edit, "admin": admin}
}

// Check fails t for every grant ("group|resource|verb") in got that docs/security.md does not
// give its role ("What edit and admin may do"), naming the rule it breaks, and for every grant of
// want that is missing: edit writes IdPTokenBindings only, admin Auth0Tenants too, nobody writes
// status or ClusterAuth0Tenants, view writes nothing, and no grant is a wildcard.
func Check(t testing.TB, got, want map[string][]string) {
	t.Helper()
	for _, role := range []string{"view", "edit", "admin"} {
		var reported []string
		for _, g := range got[role] {
			parts := strings.Split(g, "|") // group|resource|verb
			group, resource, verb := parts[0], parts[1], parts[2]
			if group == "*" || resource == "*" || verb == "*" {
				t.Errorf("%s gets a wildcard grant %s", role, g)
			}
			switch {
			case !slices.Contains(WriteVerbs, verb):
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
