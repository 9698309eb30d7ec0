package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ClusterAuth0TenantSpec is an Auth0TenantSpec shared by many namespaces, with a policy saying
// which namespace may bind which users and connections.
type ClusterAuth0TenantSpec struct {
	Auth0TenantSpec `json:",inline"`

	// conditions say who may bind what. A binding may use the tenant when at least one condition
	// matches both its namespace and its subject. Empty: nobody may (deny by default).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	Conditions []ClusterTenantCondition `json:"conditions,omitempty"`
}

// ClusterTenantCondition grants the namespaces it matches the users and connections it names.
// The namespace part matches when any of namespaces, namespaceSelector or namespaceRegexes
// matches; a condition with none of the three matches no namespace.
// +kubebuilder:validation:XValidation:rule="has(self.namespaces) || has(self.namespaceSelector) || has(self.namespaceRegexes)",message="a condition must name namespaces, a namespaceSelector or namespaceRegexes: an empty namespace part would match no namespace"
type ClusterTenantCondition struct {
	// namespaces are namespace names this condition applies to.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=63
	Namespaces []string `json:"namespaces,omitempty"`

	// namespaceSelector selects namespaces by their labels.
	// +optional
	NamespaceSelector *metav1.LabelSelector `json:"namespaceSelector,omitempty"`

	// namespaceRegexes are regular expressions (RE2) that must match the whole namespace name
	// (they are anchored at both ends), such as team-.* for every namespace starting with team-.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=256
	NamespaceRegexes []string `json:"namespaceRegexes,omitempty"`

	// users are globs (path.Match syntax) on the Auth0 user_id, such as "google-oauth2|*".
	// Empty means any user. User bindings only.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=512
	Users []string `json:"users,omitempty"`

	// connections are the identity connection names (user bindings) or enterprise connection
	// ids or names (connection bindings) that may be bound. Empty means any.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=1024
	// +kubebuilder:validation:items:MaxLength=128
	Connections []string `json:"connections,omitempty"`

	// includeRefreshToken says whether the bindings this condition grants may set
	// spec.secret.includeRefreshToken, and so hold the refresh token of a lineage other
	// namespaces may share. Default Denied: such a binding is NotPermitted.
	// +optional
	// +kubebuilder:default=Denied
	IncludeRefreshToken IncludeRefreshTokenPolicy `json:"includeRefreshToken,omitempty"`
}

// IncludeRefreshTokenPolicy says whether a condition's bindings may put the refresh token into
// their Secrets.
// +kubebuilder:validation:Enum=Denied;Allowed
type IncludeRefreshTokenPolicy string

const (
	// IncludeRefreshTokenDenied: a binding with includeRefreshToken true is NotPermitted.
	IncludeRefreshTokenDenied IncludeRefreshTokenPolicy = "Denied"
	// IncludeRefreshTokenAllowed: the condition's bindings may hold the lineage's refresh token.
	IncludeRefreshTokenAllowed IncludeRefreshTokenPolicy = "Allowed"
)

// ClusterAuth0Tenant tells the operator how to reach one Auth0 tenant for bindings of many
// namespaces, and which namespace may bind which users. Its credentials live in the operator's
// namespace, so teams never see them nor the refresh tokens of its identities.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=idptoken
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Domain",type=string,JSONPath=`.spec.domain`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ClusterAuth0Tenant struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says how to reach the tenant and who may use it.
	// +required
	Spec ClusterAuth0TenantSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status Auth0TenantStatus `json:"status,omitempty"`
}

// ClusterAuth0TenantList is a list of ClusterAuth0Tenant.
// +kubebuilder:object:root=true
type ClusterAuth0TenantList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ClusterAuth0Tenant `json:"items"`
}
