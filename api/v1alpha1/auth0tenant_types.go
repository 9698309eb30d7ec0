package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Auth0Tenant Ready=False reasons.
const (
	// ReasonAuthenticated: the machine-to-machine app obtained a Management API token.
	ReasonAuthenticated = "Authenticated"
	// ReasonCredentialsNotFound: the credentials Secret or one of its keys is missing.
	ReasonCredentialsNotFound = "CredentialsNotFound"
	// ReasonAuthenticationFailed: Auth0 refused the client credentials, or could not be reached.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonMissingScopes: the token lacks scopes the operator needs.
	ReasonMissingScopes = "MissingScopes"
)

// Auth0TenantSpec says how to reach one Auth0 tenant's Management API.
// +kubebuilder:validation:XValidation:rule="!has(self.audience) || size(self.audience) == 0 || (isURL(self.audience) && url(self.audience).getScheme() == 'https')",message="spec.audience must be an https:// URL such as https://example.us.auth0.com/api/v2/, or empty for the default"
type Auth0TenantSpec struct {
	// domain is the tenant's host, or host:port, such as example.us.auth0.com. The operator
	// always uses HTTPS; give no scheme and no path.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=259
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\\\\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*(:[0-9]{1,5})?$')",message="spec.domain must be a host or host:port such as example.us.auth0.com, with no scheme (https://) and no path"
	Domain string `json:"domain"`

	// audience is the Management API identifier the token is requested for.
	// Empty means https://<domain>/api/v2/.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Audience string `json:"audience,omitempty"`

	// credentialsSecretRef names the Secret, in the tenant's namespace, holding the client ID and
	// secret of a machine-to-machine application of the tenant authorised for the Management API.
	// +required
	CredentialsSecretRef SecretKeysRef `json:"credentialsSecretRef"`

	// caBundle is PEM-encoded certificates trusted, in addition to the system roots, for every
	// HTTPS call made for this tenant (Auth0 and the identity providers' token endpoints).
	// +optional
	CABundle []byte `json:"caBundle,omitempty"`

	// rateLimit caps the operator's Management API requests to this tenant. The defaults match
	// Auth0's free tier; raise them to your plan's limit.
	// +optional
	// +kubebuilder:default={}
	RateLimit RateLimit `json:"rateLimit,omitempty"`
}

// RateLimit is a token bucket.
type RateLimit struct {
	// requestsPerSecond is the sustained rate of Management API requests.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:XValidation:rule="self >= 1",message="spec.rateLimit.requestsPerSecond must be at least 1"
	RequestsPerSecond int32 `json:"requestsPerSecond,omitempty"`

	// burst is how many requests may be sent at once after a quiet period.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:XValidation:rule="self >= 1",message="spec.rateLimit.burst must be at least 1"
	Burst int32 `json:"burst,omitempty"`
}

// Auth0TenantStatus is the observed state of an Auth0Tenant.
type Auth0TenantStatus struct {
	// observedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready tells whether the operator can use the tenant's Management API.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// grantedScopes are the scopes of the Management API token the operator holds.
	// +optional
	// +listType=atomic
	GrantedScopes []string `json:"grantedScopes,omitempty"`
}

// Auth0Tenant tells the operator how to reach one Auth0 tenant's Management API.
// Bindings in the same namespace refer to it by name.
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=idptoken
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Domain",type=string,JSONPath=`.spec.domain`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Auth0Tenant struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says how to reach the tenant.
	// +required
	Spec Auth0TenantSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status Auth0TenantStatus `json:"status,omitempty"`
}

// Auth0TenantList is a list of Auth0Tenant.
// +kubebuilder:object:root=true
type Auth0TenantList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Auth0Tenant `json:"items"`
}
