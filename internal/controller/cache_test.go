package controller

import (
	"encoding/json"
	"testing"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

func TestTheCacheKeepsNothingTheOperatorDoesNotRead(t *testing.T) {
	b := &authv1alpha1.IdPTokenBinding{ObjectMeta: metav1.ObjectMeta{
		Name: "alice",
		Annotations: map[string]string{
			corev1.LastAppliedConfigAnnotation:  `{"spec":{"a":"long copy"}}`,
			authv1alpha1.AnnotationForceRefresh: "1",
		},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
	}}
	out, err := stripUnread(b)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*authv1alpha1.IdPTokenBinding)
	if _, ok := got.Annotations[corev1.LastAppliedConfigAnnotation]; ok || got.ManagedFields != nil {
		t.Errorf("kept annotations %v, managedFields %v", got.Annotations, got.ManagedFields)
	}
	if got.Annotations[authv1alpha1.AnnotationForceRefresh] != "1" {
		t.Error("an annotation the operator reads was dropped")
	}
}

// Two bindings decoded apart share one copy of the strings every binding repeats once the cache
// transform has run, and read exactly as before.
func TestTheCacheKeepsOneCopyOfTheStringsEveryObjectRepeats(t *testing.T) {
	decode := func(name string) *authv1alpha1.IdPTokenBinding {
		b := &authv1alpha1.IdPTokenBinding{}
		doc := `{"metadata":{"name":"` + name + `","namespace":"team-a","labels":{"app.kubernetes.io/part-of":"payments"},
			"finalizers":["auth.idptoken.dev/retain"]},
			"spec":{"tenantRef":{"kind":"Auth0Tenant","name":"prod"},"user":{"id":"google-oauth2|` + name + `","connection":"google-oauth2"},
			"secret":{"name":"` + name + `-token","type":"Opaque"}},
			"status":{"conditions":[{"type":"Ready","status":"True","reason":"Synced","message":"Secret ` + name + `-token holds a valid token",
			"lastTransitionTime":"2026-12-05T10:00:00Z"}],"expirySource":"IdPResponse","identity":{"provider":"google-oauth2","connection":"google-oauth2","userID":"` + name + `"}}}`
		if err := json.Unmarshal([]byte(doc), b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	a, b := decode("alice"), decode("bob")
	before := a.DeepCopy()
	for _, o := range []*authv1alpha1.IdPTokenBinding{a, b} {
		if _, err := stripUnread(o); err != nil {
			t.Fatal(err)
		}
	}
	if !equality.Semantic.DeepEqual(before, a) {
		t.Fatalf("the transform changed the binding:\n%v\n%v", before, a)
	}
	same := func(what, x, y string) {
		t.Helper()
		if x != y || unsafe.StringData(x) != unsafe.StringData(y) {
			t.Errorf("%s: two copies (%q, %q)", what, x, y)
		}
	}
	keyOf := func(m map[string]string) string {
		for k := range m {
			return k
		}
		return ""
	}
	same("namespace", a.Namespace, b.Namespace)
	same("label key", keyOf(a.Labels), keyOf(b.Labels))
	same("finalizer", a.Finalizers[0], b.Finalizers[0])
	same("tenant", a.Spec.TenantRef.Name, b.Spec.TenantRef.Name)
	same("connection", a.Spec.User.Connection, b.Spec.User.Connection)
	same("condition type", a.Status.Conditions[0].Type, b.Status.Conditions[0].Type)
	same("condition reason", a.Status.Conditions[0].Reason, b.Status.Conditions[0].Reason)
	same("provider", a.Status.Identity.Provider, b.Status.Identity.Provider)
	if unsafe.StringData(a.Name) == unsafe.StringData(b.Name) {
		t.Error("names differ and must not be interned")
	}

	// A Secret: namespace, keys and the operator's label value; data keys too (a refresh-state
	// Secret keeps its data in the cache).
	s1 := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: string([]byte("team-a")),
		Labels: map[string]string{string([]byte(authv1alpha1.LabelManagedBy)): string([]byte(authv1alpha1.ManagedByValue))}},
		Data: map[string][]byte{string([]byte("access_token")): []byte("x")}}
	s2 := s1.DeepCopy()
	s2.Namespace = string([]byte("team-a"))
	for _, s := range []*corev1.Secret{s1, s2} {
		if _, err := stripUnreadAndDigest(s); err != nil {
			t.Fatal(err)
		}
	}
	same("secret namespace", s1.Namespace, s2.Namespace)
	same("managed-by value", s1.Labels[authv1alpha1.LabelManagedBy], s2.Labels[authv1alpha1.LabelManagedBy])
	var k1, k2 string
	for k := range s1.Data {
		k1 = k
	}
	for k := range s2.Data {
		k2 = k
	}
	same("data key", k1, k2)

	// A target Secret's reference to its binding shares the strings of its label and annotation.
	target := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "token",
		Labels:      map[string]string{authv1alpha1.LabelBinding: string([]byte("b-1"))},
		Annotations: map[string]string{authv1alpha1.AnnotationBindingUID: string([]byte("uid-1"))},
		OwnerReferences: []metav1.OwnerReference{{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "IdPTokenBinding",
			Name: string([]byte("b-1")), UID: types.UID([]byte("uid-1")), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(false)}},
	}}
	beforeTarget := target.DeepCopy()
	if _, err := stripUnread(target); err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(beforeTarget, target) {
		t.Fatalf("the transform changed the Secret:\n%v\n%v", beforeTarget, target)
	}
	ref := target.OwnerReferences[0]
	same("owner name", ref.Name, target.Labels[authv1alpha1.LabelBinding])
	same("owner uid", string(ref.UID), target.Annotations[authv1alpha1.AnnotationBindingUID])
}
