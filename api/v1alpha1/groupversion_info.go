// Package v1alpha1 contains the API types of the auth.idptoken.dev v1alpha1 API group.
// +kubebuilder:object:generate=true
// +groupName=auth.idptoken.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "auth.idptoken.dev", Version: "v1alpha1"}

	// SchemeBuilder adds the kinds of this package to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the kinds of this package to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Auth0Tenant{}, &Auth0TenantList{},
		&IdPTokenBinding{}, &IdPTokenBindingList{},
		&ClusterAuth0Tenant{}, &ClusterAuth0TenantList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
