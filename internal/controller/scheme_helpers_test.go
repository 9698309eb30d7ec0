package controller

import (
	"testing"

	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// unitScheme is the scheme of the unit tests' fake clients: Kubernetes' types and the operator's.
func unitScheme(t testing.TB) *k8sruntime.Scheme {
	t.Helper()
	s := k8sruntime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	if err := authv1alpha1.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}
