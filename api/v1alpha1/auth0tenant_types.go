package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Tenant (Auth0Tenant and ClusterAuth0Tenant) Ready reasons.
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

// Tenant TokenVaultReady reasons.
const (
	// ReasonTokenVaultConfigured: the Token Vault credentials parse and the key is usable.
	ReasonTokenVaultConfigured = "Configured"
	// ReasonTokenVaultCredentialsNotFound: the Token Vault credentials Secret or one of its keys is missing.
	ReasonTokenVaultCredentialsNotFound = "TokenVaultCredentialsNotFound"
	// ReasonTokenVaultCredentialsInvalid: the private key does not parse or is not an RSA key of 2048 bits or more.
	ReasonTokenVaultCredentialsInvalid = "TokenVaultCredentialsInvalid"
	// ReasonTokenVaultNotAuthorized: Auth0 answered 403 to a token exchange: the client may not use Token Vault.
	ReasonTokenVaultNotAuthorized = "TokenVaultNotAuthorized"
)

// ConditionTokenVaultReady tells whether a tenant's Token Vault client can be used.
const ConditionTokenVaultReady = "TokenVaultReady"

// ConditionM2MQuotaExhausted is True while Auth0 refuses new machine-to-machine tokens to the
// tenant's client (its M2M token quota is spent, or Auth0's global limit on /oauth/token was hit):
// every token request is held until the time its message gives. Ready stays True while the
// token already held is valid.
const ConditionM2MQuotaExhausted = "M2MQuotaExhausted"

// Tenant M2MQuotaExhausted reasons.
const (
	// ReasonQuotaExhausted: /oauth/token answered 429: the client's M2M token quota is spent.
	ReasonQuotaExhausted = "QuotaExhausted"
	// ReasonGlobalRateLimit: /oauth/token answered 500 with x-ratelimit-*: Auth0's global limit.
	ReasonGlobalRateLimit = "GlobalRateLimit"
	// ReasonQuotaAvailable: Auth0 issues M2M tokens to the client.
	ReasonQuotaAvailable = "QuotaAvailable"
)

// ConditionEventsReady tells whether the tenant's Auth0 Events API subscription is open; absent
// when spec.events is not enabled. Events only move work earlier: while it is False, tokens are
// still renewed before they expire.
const ConditionEventsReady = "EventsReady"

// Tenant EventsReady reasons.
const (
	// ReasonSubscribed: the events stream is open.
	ReasonSubscribed = "Subscribed"
	// ReasonEventsNotAuthorized: Auth0 answered 401 or 403 to the stream: the client lacks read:events.
	ReasonEventsNotAuthorized = "EventsNotAuthorized"
	// ReasonEventsUnavailable: the stream cannot be opened or kept open (Auth0 unreachable, 429,
	// 5xx, an event type the tenant refuses, the tenant's client not ready).
	ReasonEventsUnavailable = "EventsUnavailable"
)

// RefreshOverridePolicy says whether bindings may override the IdP token endpoint and client.
// +kubebuilder:validation:Enum=Denied;Allowed
type RefreshOverridePolicy string

const (
	// RefreshOverrideDenied: spec.refresh.tokenURL and clientCredentialsSecretRef are refused.
	RefreshOverrideDenied RefreshOverridePolicy = "Denied"
	// RefreshOverrideAllowed: bindings may send refresh tokens to an endpoint of their choice.
	RefreshOverrideAllowed RefreshOverridePolicy = "Allowed"
)

// Auth0TenantSpec says how to reach one Auth0 tenant's Management API.
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
	// +kubebuilder:validation:XValidation:rule="size(self) == 0 || (isURL(self) && url(self).getScheme() == 'https')",message="spec.audience must be an https:// URL such as https://example.us.auth0.com/api/v2/, or empty for the default"
	Audience string `json:"audience,omitempty"`

	// credentialsSecretRef names the Secret holding the client ID and secret of a
	// machine-to-machine application of the tenant authorised for the Management API. For an
	// Auth0Tenant it is in the tenant's namespace; for a ClusterAuth0Tenant in the operator's.
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

	// refreshOverride says whether bindings of this tenant may set spec.refresh.tokenURL or
	// spec.refresh.clientCredentialsSecretRef. Allowing it lets anyone who can create a binding
	// send a user's refresh token to a host of their choice. Default Denied.
	// +optional
	// +kubebuilder:default=Denied
	RefreshOverride RefreshOverridePolicy `json:"refreshOverride,omitempty"`

	// tokenVault configures Auth0 Token Vault's Privileged Worker token exchange, for bindings
	// with spec.user.source TokenVault.
	// +optional
	TokenVault *TokenVaultSpec `json:"tokenVault,omitempty"`

	// events subscribes to the tenant's Auth0 Events API stream, so that a user who logs in
	// again, a deleted user or a changed connection is acted on in seconds rather than at the
	// next expiry. Needs the scope read:events. Off by default.
	// +optional
	Events *EventsSpec `json:"events,omitempty"`
}

// The Auth0 event types the operator acts on.
const (
	EventUserUpdated       = "user.updated"
	EventUserDeleted       = "user.deleted"
	EventConnectionUpdated = "connection.updated"
)

// EventsSpec configures a tenant's subscription to Auth0's Events API.
type EventsSpec struct {
	// enabled subscribes to the stream (the elected manager holds one connection per tenant).
	// Default false.
	// +optional
	Enabled bool `json:"enabled,omitempty"`

	// types are the event types to subscribe to. Default user.updated, user.deleted and
	// connection.updated.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MinItems=1
	// +kubebuilder:validation:MaxItems=3
	// +kubebuilder:validation:items:Enum=user.updated;user.deleted;connection.updated
	// +kubebuilder:default={"user.updated","user.deleted","connection.updated"}
	Types []string `json:"types,omitempty"`
}

// EventsTypes returns the event types a tenant subscribes to; nil when events are off.
func (s *Auth0TenantSpec) EventsTypes() []string {
	if s.Events == nil || !s.Events.Enabled {
		return nil
	}
	if len(s.Events.Types) == 0 {
		return []string{EventUserUpdated, EventUserDeleted, EventConnectionUpdated}
	}
	return s.Events.Types
}

// TokenVaultSpec configures the Privileged Worker client of Auth0 Token Vault.
type TokenVaultSpec struct {
	// credentialsSecretRef names the Secret (same namespace rules as the tenant's credentials)
	// holding the Privileged Worker client: keys client_id, private_key (PEM, RS256) and,
	// optionally, client_secret.
	// +required
	CredentialsSecretRef LocalSecretRef `json:"credentialsSecretRef"`

	// rateLimit caps token exchanges at the Authentication API, a budget separate from the
	// Management API's.
	// +optional
	// +kubebuilder:default={requestsPerSecond: 10, burst: 10}
	RateLimit RateLimit `json:"rateLimit,omitempty"`
}

// LocalSecretRef names a Secret.
type LocalSecretRef struct {
	// name of the Secret.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// RateLimit is a token bucket.
type RateLimit struct {
	// requestsPerSecond is the sustained rate of requests.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:XValidation:rule="self >= 1",message="rateLimit.requestsPerSecond must be at least 1"
	RequestsPerSecond int32 `json:"requestsPerSecond,omitempty"`

	// burst is how many requests may be sent at once after a quiet period.
	// +optional
	// +kubebuilder:default=2
	// +kubebuilder:validation:XValidation:rule="self >= 1",message="rateLimit.burst must be at least 1"
	Burst int32 `json:"burst,omitempty"`
}

// Auth0TenantStatus is the observed state of a tenant.
type Auth0TenantStatus struct {
	// observedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready tells whether the operator can use the tenant's Management API;
	// TokenVaultReady whether its Token Vault client can be used (only with spec.tokenVault).
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
