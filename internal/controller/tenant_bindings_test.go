package controller

import (
	"context"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// A tenant's bindings are the ones whose tenantRef names it: a namespaced tenant's only in its
// namespace, a cluster tenant's in any namespace, and never those of a tenant of the same name
// and another kind or namespace.
func TestTenantBindingsAreOnlyThoseOfTheTenant(t *testing.T) {
	bindingOf := func(ns, name string, kind authv1alpha1.TenantKind, tenant string) client.Object {
		return &authv1alpha1.IdPTokenBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
			Spec: authv1alpha1.IdPTokenBindingSpec{TenantRef: authv1alpha1.TenantRef{Kind: kind, Name: tenant}}}
	}
	c := fake.NewClientBuilder().WithScheme(unitScheme(t)).WithObjects(
		bindingOf("team-a", "a-prod", authv1alpha1.TenantKindNamespaced, "prod"),
		bindingOf("team-a", "a-dev", authv1alpha1.TenantKindNamespaced, "dev"),
		bindingOf("team-a", "a-shared", authv1alpha1.TenantKindCluster, "prod"),
		bindingOf("team-b", "b-prod", authv1alpha1.TenantKindNamespaced, "prod"),
		bindingOf("team-b", "b-shared", authv1alpha1.TenantKindCluster, "prod"),
	).Build()
	tests := map[string]struct {
		key  TenantKey
		want []string
	}{
		"a namespaced tenant": {TenantKey{Kind: authv1alpha1.TenantKindNamespaced, NamespacedName: types.NamespacedName{Namespace: "team-a", Name: "prod"}},
			[]string{"team-a/a-prod"}},
		"the same name in another namespace": {TenantKey{Kind: authv1alpha1.TenantKindNamespaced, NamespacedName: types.NamespacedName{Namespace: "team-b", Name: "prod"}},
			[]string{"team-b/b-prod"}},
		"a cluster tenant": {TenantKey{Kind: authv1alpha1.TenantKindCluster, NamespacedName: types.NamespacedName{Name: "prod"}},
			[]string{"team-a/a-shared", "team-b/b-shared"}},
		"a tenant nobody uses": {TenantKey{Kind: authv1alpha1.TenantKindCluster, NamespacedName: types.NamespacedName{Name: "dev"}}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			bound, err := tenantBindings(context.Background(), c, tc.key)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range bound {
				got = append(got, client.ObjectKeyFromObject(b).String())
			}
			slices.Sort(got)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
