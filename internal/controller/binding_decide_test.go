package controller

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/auth0"
)

func testBinding() *authv1alpha1.IdPTokenBinding {
	return &authv1alpha1.IdPTokenBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "alice", Namespace: "team-a", UID: "uid-1", Generation: 1},
		Status:     authv1alpha1.IdPTokenBindingStatus{ObservedGeneration: 1},
		Spec: authv1alpha1.IdPTokenBindingSpec{
			TenantRef: authv1alpha1.TenantRef{Kind: authv1alpha1.TenantKindNamespaced, Name: "prod"},
			User:      &authv1alpha1.UserSource{ID: "google-oauth2|1"},
			Secret:    authv1alpha1.SecretTarget{Name: "alice-token", Type: corev1.SecretTypeOpaque},
		},
	}
}

func TestSelectIdentity(t *testing.T) {
	u := &auth0.User{UserID: "github|42", Identities: []auth0.Identity{
		{Connection: "google-oauth2", Provider: "google-oauth2", UserID: "7"},
		{Connection: "github", Provider: "github", UserID: "42"},
	}}
	tests := map[string]struct {
		connection, want string
		wantReason       string
	}{
		"primary identity is the one matching user_id": {want: "github"},
		"by connection":      {connection: "google-oauth2", want: "google-oauth2"},
		"missing connection": {connection: "windowslive", wantReason: authv1alpha1.ReasonIdentityNotFound},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			id, f := selectIdentity(u, tc.connection)
			if tc.wantReason != "" {
				if f == nil || f.Reason != tc.wantReason || !strings.Contains(f.Message, "google-oauth2, github") {
					t.Fatalf("failure = %+v, want reason %s listing the linked connections", f, tc.wantReason)
				}
				return
			}
			if f != nil || id.Connection != tc.want {
				t.Fatalf("selectIdentity() = %+v, %+v; want %s", id, f, tc.want)
			}
		})
	}
}

func TestLegacyStateName(t *testing.T) {
	b := testBinding()
	if got := legacyStateName(b); got != "alice.idptoken-state" {
		t.Errorf("legacyStateName = %q", got)
	}
	b.Name = strings.Repeat("a", 253)
	if got := legacyStateName(b); len(got) > 253 || !strings.HasSuffix(got, ".idptoken-state") {
		t.Errorf("long name gives %q (%d chars)", got, len(got))
	}
}

func TestIdentityNamesOneLineagePerIdentity(t *testing.T) {
	// Bindings in two namespaces of one cluster tenant share the identity; of namespaced tenants they do not.
	b1, b2 := testBinding(), testBinding()
	b2.Namespace = "team-b"
	b1.Spec.TenantRef = authv1alpha1.TenantRef{Kind: authv1alpha1.TenantKindCluster, Name: "prod"}
	b2.Spec.TenantRef = b1.Spec.TenantRef
	if sourceOf(b1) != sourceOf(b2) {
		t.Error("two namespaces' bindings of one ClusterAuth0Tenant identity must share a lineage")
	}
	b1.Spec.TenantRef, b2.Spec.TenantRef = authv1alpha1.TenantRef{Name: "prod"}, authv1alpha1.TenantRef{Name: "prod"}
	if sourceOf(b1) == sourceOf(b2) {
		t.Error("namespaced tenants of the same name in two namespaces must not share a lineage")
	}
	if v := identityIndexValues(b1); len(v) != 1 || v[0] != sourceOf(b1) {
		t.Errorf("identityIndexValues = %v, want the lineage alone", v)
	}
	if p := previousHashOf(b1); p == sourceOf(b1) || p == "" {
		t.Errorf("previousHashOf = %q, want the name of earlier versions", p)
	}
}

func TestParseTenantKeyReadsWhatStringWrites(t *testing.T) {
	for _, k := range []TenantKey{
		{Kind: authv1alpha1.TenantKindCluster, NamespacedName: types.NamespacedName{Name: "prod"}},
		{Kind: authv1alpha1.TenantKindNamespaced, NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "prod"}},
	} {
		if got, ok := parseTenantKey(k.String()); !ok || got != k {
			t.Errorf("parseTenantKey(%q) = %v, %v", k.String(), got, ok)
		}
	}
	for _, bad := range []string{"", "prod", "Auth0Tenant/prod", "ClusterAuth0Tenant/a/b", "Other/a/b"} {
		if _, ok := parseTenantKey(bad); ok {
			t.Errorf("parseTenantKey(%q) accepted", bad)
		}
	}
}

// sourceOf names the lineage a binding's token must come from.
func sourceOf(b *authv1alpha1.IdPTokenBinding) string {
	return identityOf(tenantKeyOf(b), b).Hash()
}
