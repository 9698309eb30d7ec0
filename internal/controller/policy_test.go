package controller

import (
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func TestPermitted(t *testing.T) {
	type C = authv1alpha1.ClusterTenantCondition
	teamA := C{Namespaces: []string{"team-a"}, Users: []string{"google-oauth2|*"}, Connections: []string{"google-oauth2"}}
	bySelector := C{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"idptoken.dev/tenant": "prod"}}}
	byRegex := C{NamespaceRegexes: []string{"team-.*"}, Users: []string{"github|4711"}}
	admins := C{Namespaces: []string{"platform"}, Connections: []string{"con_AbC123"}}
	tests := map[string]struct {
		conds    []C
		ns       string
		labels   map[string]string
		subj     subject
		want     bool
		contains string // in the refusal message
	}{
		"a regex matches the whole namespace name, not a part of it": {
			conds: []C{{NamespaceRegexes: []string{"team-a"}}}, ns: "not-team-a", subj: subject{userID: "google-oauth2|1"},
			contains: "no condition matches the namespace",
		},
		"an anchored regex matches its namespace": {
			conds: []C{{NamespaceRegexes: []string{"team-a"}}}, ns: "team-a", subj: subject{userID: "google-oauth2|1"}, want: true,
		},
		"an alternation is anchored as a whole": {
			conds: []C{{NamespaceRegexes: []string{"team-a|team-b"}}}, ns: "team-bx", subj: subject{userID: "google-oauth2|1"},
			contains: "no condition matches the namespace",
		},
		"includeRefreshToken needs a condition that allows it": {
			conds: []C{teamA}, ns: "team-a", subj: subject{userID: "google-oauth2|1", connection: "google-oauth2", refreshToken: true},
			contains: "includeRefreshToken: Allowed",
		},
		"includeRefreshToken on a condition that allows it": {
			conds: []C{{Namespaces: []string{"team-a"}, IncludeRefreshToken: authv1alpha1.IncludeRefreshTokenAllowed}}, ns: "team-a",
			subj: subject{userID: "google-oauth2|1", connection: "google-oauth2", refreshToken: true}, want: true,
		},
		"no conditions: nobody": {
			conds: nil, ns: "team-a", subj: subject{userID: "google-oauth2|1", connection: "google-oauth2"},
			contains: "has no conditions",
		},
		"namespace, user glob and connection match": {
			conds: []C{teamA}, ns: "team-a", subj: subject{userID: "google-oauth2|1", connection: "google-oauth2"}, want: true,
		},
		"user outside the glob": {
			conds: []C{teamA}, ns: "team-a", subj: subject{userID: "github|1", connection: "google-oauth2"},
			contains: `user "github|1" matches none`,
		},
		"connection not listed": {
			conds: []C{teamA}, ns: "team-a", subj: subject{userID: "google-oauth2|1", connection: "github"},
			contains: `connection "github" is not among`,
		},
		"primary identity where connections are limited": {
			conds: []C{teamA}, ns: "team-a", subj: subject{userID: "google-oauth2|1"},
			contains: "spec.user.connection must name one",
		},
		"another namespace": {
			conds: []C{teamA}, ns: "team-b", subj: subject{userID: "google-oauth2|1", connection: "google-oauth2"},
			contains: "no condition matches the namespace",
		},
		"namespace selected by label, any subject": {
			conds: []C{bySelector}, ns: "payments", labels: map[string]string{"idptoken.dev/tenant": "prod"},
			subj: subject{userID: "github|9", connection: "github"}, want: true,
		},
		"label selector does not match": {
			conds: []C{bySelector}, ns: "payments", labels: map[string]string{"idptoken.dev/tenant": "dev"},
			subj: subject{userID: "github|9"}, contains: "no condition matches the namespace",
		},
		"regex namespace and exact user": {
			conds: []C{byRegex}, ns: "team-x", subj: subject{userID: "github|4711", connection: "github"}, want: true,
		},
		"any condition may grant": {
			conds: []C{teamA, byRegex}, ns: "team-a", subj: subject{userID: "github|4711"}, want: true,
		},
		"enterprise connection granted by id": {
			conds: []C{admins}, ns: "platform", subj: subject{connection: "con_AbC123"}, want: true,
		},
		"a condition listing users grants no admin tokens": {
			conds: []C{teamA}, ns: "team-a", subj: subject{connection: "google-oauth2"},
			contains: "grants no enterprise connection's admin tokens",
		},
		"an invalid regex matches nothing and says why": {
			conds: []C{{NamespaceRegexes: []string{"("}}}, ns: "team-a", subj: subject{userID: "u"},
			contains: "namespaceRegexes",
		},
		"an empty selector matches nothing": {
			conds: []C{{NamespaceSelector: &metav1.LabelSelector{}}}, ns: "team-a", subj: subject{userID: "u"},
			contains: "no condition matches the namespace",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, msg := permitted("prod", tc.conds, tc.ns, tc.labels, tc.subj)
			if got != tc.want {
				t.Fatalf("permitted = %v (%s), want %v", got, msg, tc.want)
			}
			if !tc.want && !strings.Contains(msg, tc.contains) {
				t.Errorf("message %q does not contain %q", msg, tc.contains)
			}
		})
	}
}
