package controller

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
