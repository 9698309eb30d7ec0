package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// IdPTokenBinding Ready reasons.
const (
	// ReasonSynced: the target Secret holds the current token and it has not expired.
	ReasonSynced = "Synced"
	// ReasonTenantNotFound: the referenced tenant does not exist.
	ReasonTenantNotFound = "TenantNotFound"
	// ReasonTenantNotReady: the referenced tenant exists but cannot authenticate.
	ReasonTenantNotReady = "TenantNotReady"
	// ReasonUserNotFound: Auth0 has no user with spec.user.id.
	ReasonUserNotFound = "UserNotFound"
	// ReasonConnectionNotFound: Auth0 has no connection with spec.connection.id.
	ReasonConnectionNotFound = "ConnectionNotFound"
	// ReasonIdentityNotFound: the user has no identity linked through spec.user.connection.
	ReasonIdentityNotFound = "IdentityNotFound"
	// ReasonNoAccessToken: Auth0 returned no access token for the identity or connection.
	ReasonNoAccessToken = "NoAccessToken"
	// ReasonSecretConflict: a Secret of the target name exists and this binding does not manage it.
	ReasonSecretConflict = "SecretConflict"
	// ReasonManagementAPIError: the Auth0 Management API failed (5xx, 429, timeout, bad response).
	ReasonManagementAPIError = "ManagementAPIError"
	// ReasonRefreshFailed: the identity provider's token endpoint failed.
	ReasonRefreshFailed = "RefreshFailed"
	// ReasonTokenExpired: the token in the Secret has expired and no fresh one could be had.
	ReasonTokenExpired = "TokenExpired"
	// ReasonNotPermitted: the ClusterAuth0Tenant's conditions do not let this namespace bind this subject.
	ReasonNotPermitted = "NotPermitted"
	// ReasonInvalidRefreshConfig: spec.refresh overrides the IdP endpoint or client in a way the
	// tenant or the security rules do not allow.
	ReasonInvalidRefreshConfig = "InvalidRefreshConfig"
	// ReasonSecretWriteFailed: the API server refused to write the target Secret (4xx).
	ReasonSecretWriteFailed = "SecretWriteFailed"
	// ReasonTokenVaultEnabled: the connection keeps its tokens in Auth0 Token Vault; set spec.user.source TokenVault.
	ReasonTokenVaultEnabled = "TokenVaultEnabled"
	// ReasonRefreshUnsupported: the operator knows no token endpoint (or cannot do the client
	// authentication) of the connection's strategy; the token is synced from Auth0 and re-read at
	// its expiry, never refreshed at the IdP.
	ReasonRefreshUnsupported = "RefreshUnsupported"
)

// TokenSource says where a user binding's token comes from.
// +kubebuilder:validation:Enum=Identities;TokenVault
type TokenSource string

const (
	// TokenSourceIdentities reads the token from the user's identities[] in the Management API.
	TokenSourceIdentities TokenSource = "Identities"
	// TokenSourceTokenVault exchanges for the token at Auth0 Token Vault (Privileged Worker).
	TokenSourceTokenVault TokenSource = "TokenVault"
)

// TenantKind is the kind of tenant a binding refers to.
// +kubebuilder:validation:Enum=Auth0Tenant;ClusterAuth0Tenant
type TenantKind string

const (
	// TenantKindNamespaced is an Auth0Tenant in the binding's namespace.
	TenantKindNamespaced TenantKind = "Auth0Tenant"
	// TenantKindCluster is a cluster-scoped ClusterAuth0Tenant.
	TenantKindCluster TenantKind = "ClusterAuth0Tenant"
)

// DeletionPolicy says what happens to the target Secret when the binding is deleted.
// +kubebuilder:validation:Enum=Delete;Retain
type DeletionPolicy string

const (
	// DeletionPolicyDelete deletes the target Secret with the binding (through its ownerReference).
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyRetain keeps the target Secret, released from the operator's management.
	DeletionPolicyRetain DeletionPolicy = "Retain"
)

// ExpirySource says where a token's expiry time came from.
// +kubebuilder:validation:Enum=IdPResponse;JWT;Auth0;Estimated;Unknown
type ExpirySource string

const (
	// ExpirySourceIdPResponse: expires_in of the identity provider's refresh response.
	ExpirySourceIdPResponse ExpirySource = "IdPResponse"
	// ExpirySourceJWT: the exp claim of the access token.
	ExpirySourceJWT ExpirySource = "JWT"
	// ExpirySourceAuth0: an absolute time given by Auth0, such as admin_access_token_expiresin.
	ExpirySourceAuth0 ExpirySource = "Auth0"
	// ExpirySourceEstimated: the user's last_login plus the identity's expires_in.
	ExpirySourceEstimated ExpirySource = "Estimated"
	// ExpirySourceUnknown: no expiry known; Auth0 is re-read every fallbackInterval.
	ExpirySourceUnknown ExpirySource = "Unknown"
)

// TenantRef refers to the tenant whose Management API holds the token.
type TenantRef struct {
	// kind of the tenant: Auth0Tenant, in the binding's namespace, or ClusterAuth0Tenant.
	// +optional
	// +kubebuilder:default=Auth0Tenant
	Kind TenantKind `json:"kind,omitempty"`

	// name of the tenant.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
}

// UserSource names an Auth0 user whose linked identity's token is wanted.
// +kubebuilder:validation:XValidation:rule="!has(self.source) || self.source != 'TokenVault' || (has(self.connection) && size(self.connection) > 0)",message="spec.user.connection is required with spec.user.source TokenVault: Token Vault exchanges for the token of one named connection"
type UserSource struct {
	// id is the Auth0 user_id, such as "google-oauth2|1122334455".
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule=`!self.matches('\\p{Cc}')`,message="must not contain control characters"
	ID string `json:"id"`

	// connection picks the linked identity by Auth0 connection name, such as google-oauth2.
	// Empty means the user's primary identity.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule=`!self.matches('\\p{Cc}')`,message="must not contain control characters"
	Connection string `json:"connection,omitempty"`

	// source is where the token comes from: Identities (the user's identities[] in the
	// Management API) or TokenVault (Auth0 Token Vault's token exchange; needs the tenant's
	// spec.tokenVault and spec.user.connection).
	// +optional
	// +kubebuilder:default=Identities
	Source TokenSource `json:"source,omitempty"`
}

// ConnectionSource names an enterprise connection holding an admin's tokens (admin consent flow).
type ConnectionSource struct {
	// id of the Auth0 connection, such as con_AbC123.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=128
	// +kubebuilder:validation:XValidation:rule=`!self.matches('\\p{Cc}')`,message="must not contain control characters"
	ID string `json:"id"`
}

// LabelValue is the value of a label.
// +kubebuilder:validation:MaxLength=63
type LabelValue string

// AnnotationValue is the value of an annotation.
// +kubebuilder:validation:MaxLength=4096
type AnnotationValue string

// SecretTarget describes the Secret the token is written to.
// +kubebuilder:validation:XValidation:rule="!has(self.template) || self.includeRefreshToken || !self.template.data.exists(k, self.template.data[k].contains('RefreshToken'))",message="spec.secret.template may use .RefreshToken only with spec.secret.includeRefreshToken: true"
type SecretTarget struct {
	// name of the Secret, in the binding's namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="!format.dns1123Subdomain().validate(self).hasValue()",message="spec.secret.name must be a DNS subdomain: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit"
	// +kubebuilder:validation:XValidation:rule="!self.endsWith('.idptoken-state') && !self.startsWith('idptoken-state-')",message="spec.secret.name must not start with idptoken-state- nor end in .idptoken-state: the operator names its refresh-state Secrets so"
	Name string `json:"name"`

	// type of the Secret: Opaque, or a type of your own. The kubernetes.io/ types require keys
	// the operator does not write.
	// +optional
	// +kubebuilder:default=Opaque
	// +kubebuilder:validation:XValidation:rule="!self.startsWith('kubernetes.io/') && !self.startsWith('bootstrap.kubernetes.io/')",message="spec.secret.type must be Opaque or a custom type: the kubernetes.io/ types require keys this operator does not write"
	Type corev1.SecretType `json:"type,omitempty"`

	// includeRefreshToken also writes the refresh_token key. Off by default so that the
	// long-lived refresh token never reaches pods.
	// +optional
	// +kubebuilder:default=false
	IncludeRefreshToken bool `json:"includeRefreshToken,omitempty"`

	// labels are copied onto the Secret. Keys and values must be valid label keys and values;
	// the operator's own keys (app.kubernetes.io/managed-by, auth.idptoken.dev/*) are reserved.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k).hasValue())",message="spec.secret.labels keys must be valid label keys: an optional DNS subdomain prefix and '/', then at most 63 characters of letters, digits, '-', '_' and '.'"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.labelValue().validate(self[k]).hasValue())",message="spec.secret.labels values must be valid label values: at most 63 characters of letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
	// +kubebuilder:validation:XValidation:rule="self.all(k, k != 'app.kubernetes.io/managed-by' && !k.startsWith('auth.idptoken.dev/'))",message="spec.secret.labels must not set app.kubernetes.io/managed-by or auth.idptoken.dev/ keys: the operator sets them"
	Labels map[string]LabelValue `json:"labels,omitempty"`

	// annotations are copied onto the Secret. Keys must be valid annotation keys; the
	// operator's own keys (auth.idptoken.dev/*) are reserved.
	// +optional
	// +kubebuilder:validation:MaxProperties=64
	// +kubebuilder:validation:XValidation:rule="self.all(k, !format.qualifiedName().validate(k).hasValue())",message="spec.secret.annotations keys must be valid annotation keys: an optional DNS subdomain prefix and '/', then at most 63 characters of letters, digits, '-', '_' and '.'"
	// +kubebuilder:validation:XValidation:rule="self.all(k, !k.startsWith('auth.idptoken.dev/'))",message="spec.secret.annotations must not set auth.idptoken.dev/ keys: the operator sets them"
	Annotations map[string]AnnotationValue `json:"annotations,omitempty"`

	// template shapes the Secret's data for the app (a .netrc, a bearer header, a
	// dockerconfigjson...). Without it the keys are access_token, expires_at,
	// access_token_secret and refresh_token as documented.
	// +optional
	Template *SecretTemplate `json:"template,omitempty"`
}

// RefreshPolicy says when and how the token is renewed.
// +kubebuilder:validation:XValidation:rule="!has(self.tokenURL) || size(self.tokenURL) == 0 || has(self.clientCredentialsSecretRef)",message="spec.refresh.tokenURL requires spec.refresh.clientCredentialsSecretRef: the connection's own OAuth client is only ever sent to the connection's own token endpoint"
type RefreshPolicy struct {
	// renewBefore is how long before expiry the token is renewed, at least 10s. Default: when
	// one third of the token's lifetime remains. A value longer than the lifetime falls back to
	// the default.
	// +optional
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('10s')",message="spec.refresh.renewBefore must be a duration of at least 10s, such as 10m or 1h30m"
	RenewBefore *metav1.Duration `json:"renewBefore,omitempty"`

	// fallbackInterval is how often Auth0 is re-read when the token's expiry is unknown; at least 1m.
	// +optional
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('1m')",message="spec.refresh.fallbackInterval must be a duration of at least 1m, such as 1h or 30m: Auth0 is re-read that often while the expiry is unknown"
	FallbackInterval *metav1.Duration `json:"fallbackInterval,omitempty"`

	// tokenURL overrides the identity provider's token endpoint (HTTPS only). Default: derived
	// from the identity's Auth0 connection. Requires clientCredentialsSecretRef (the
	// connection's own OAuth client is only ever sent to the connection's own endpoint) and a
	// tenant with spec.refreshOverride Allowed.
	// +optional
	// +kubebuilder:validation:MaxLength=2048
	// +kubebuilder:validation:XValidation:rule="size(self) == 0 || (isURL(self) && url(self).getScheme() == 'https' && size(url(self).getHostname()) > 0)",message="spec.refresh.tokenURL must be an https:// URL"
	TokenURL string `json:"tokenURL,omitempty"`

	// clientCredentialsSecretRef overrides the identity provider's OAuth client used to refresh.
	// Default: the client of the identity's Auth0 connection. The Secret, in the binding's
	// namespace, must be labelled auth.idptoken.dev/oauth-client: "true"; the tenant must have
	// spec.refreshOverride Allowed.
	// +optional
	ClientCredentialsSecretRef *SecretKeysRef `json:"clientCredentialsSecretRef,omitempty"`
}

// IdPTokenBindingSpec says which token goes into which Secret.
// +kubebuilder:validation:XValidation:rule="has(self.user) != has(self.connection)",message="exactly one of spec.user or spec.connection must be set"
type IdPTokenBindingSpec struct {
	// tenantRef names the tenant whose Management API holds the token.
	// +required
	TenantRef TenantRef `json:"tenantRef"`

	// user takes the token of one of an Auth0 user's linked identities.
	// +optional
	User *UserSource `json:"user,omitempty"`

	// connection takes the admin token of an enterprise connection.
	// +optional
	Connection *ConnectionSource `json:"connection,omitempty"`

	// secret is where the token is written.
	// +required
	Secret SecretTarget `json:"secret"`

	// refresh tunes renewal.
	// +optional
	// +kubebuilder:default={}
	Refresh RefreshPolicy `json:"refresh,omitempty"`

	// deletionPolicy: Delete removes the Secret with the binding; Retain keeps it.
	// +optional
	// +kubebuilder:default=Delete
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// rolloutRestartTargets are workloads in the binding's namespace restarted (as by kubectl
	// rollout restart) when the Secret's data changes, for apps that read the token only at start
	// (env, subPath). Needs the chart's rolloutRestart.enabled.
	// +optional
	// +kubebuilder:validation:MaxItems=16
	RolloutRestartTargets []RolloutRestartTarget `json:"rolloutRestartTargets,omitempty"`

	// rolloutRestartMinInterval is the least time between two restarts of one target; at least 1m.
	// +optional
	// +kubebuilder:default="10m"
	// +kubebuilder:validation:Type=string
	// +kubebuilder:validation:MaxLength=64
	// +kubebuilder:validation:XValidation:rule="self.matches('^([0-9]+(\\\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$') && duration(self) >= duration('1m')",message="spec.rolloutRestartMinInterval must be a duration of at least 1m, such as 10m"
	RolloutRestartMinInterval *metav1.Duration `json:"rolloutRestartMinInterval,omitempty"`
}

// IdentityStatus describes the identity whose token is in the Secret.
type IdentityStatus struct {
	// provider of the identity, such as google-oauth2.
	// +optional
	Provider string `json:"provider,omitempty"`
	// connection is the Auth0 connection name.
	// +optional
	Connection string `json:"connection,omitempty"`
	// userID is the identity's user id at the provider.
	// +optional
	UserID string `json:"userID,omitempty"`
}

// IdPTokenBindingStatus is the observed state of an IdPTokenBinding.
type IdPTokenBindingStatus struct {
	// observedGeneration is the generation last synced successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// conditions: Ready is True when the Secret holds the current, unexpired token;
	// SyncFailing is True when the last attempt failed while the Secret still holds a valid token.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// identity is the identity whose token is in the Secret.
	// +optional
	Identity *IdentityStatus `json:"identity,omitempty"`

	// expiresAt is when the token in the Secret expires, in whole seconds.
	// +optional
	ExpiresAt *metav1.Time `json:"expiresAt,omitempty"`

	// expirySource says where expiresAt came from.
	// +optional
	ExpirySource ExpirySource `json:"expirySource,omitempty"`

	// nextRefreshTime is when the operator will next renew the token.
	// +optional
	NextRefreshTime *metav1.Time `json:"nextRefreshTime,omitempty"`

	// lastSyncTime is the last time the Secret's data changed.
	// +optional
	LastSyncTime *metav1.Time `json:"lastSyncTime,omitempty"`

	// lastRefreshTime is the last successful refresh at the identity provider.
	// +optional
	LastRefreshTime *metav1.Time `json:"lastRefreshTime,omitempty"`

	// failedAttempts counts consecutive failed attempts; it drives the backoff and resets on success.
	// +optional
	FailedAttempts int32 `json:"failedAttempts,omitempty"`

	// lastFailureTime is the time of the last failed attempt.
	// +optional
	LastFailureTime *metav1.Time `json:"lastFailureTime,omitempty"`

	// lastForceRefresh is the value of the auth.idptoken.dev/force-refresh annotation the
	// operator last acted on; a new value refreshes (or re-reads) the token once.
	// +optional
	LastForceRefresh string `json:"lastForceRefresh,omitempty"`

	// secretMAC is the base64 HMAC-SHA256 of the Secret's data, keyed by the operator's own key
	// (Secret idptoken-hmac-key in its namespace): it changes exactly when the data does, and
	// tells nothing about the token to whoever may read the binding.
	// +optional
	SecretMAC string `json:"secretMAC,omitempty"`

	// lastRolloutRestart is when the operator last restarted the binding's rolloutRestartTargets.
	// +optional
	LastRolloutRestart *metav1.Time `json:"lastRolloutRestart,omitempty"`
}

// IdPTokenBinding keeps one identity provider token, held by Auth0 for a user or an enterprise
// connection, fresh in one Secret.
// +kubebuilder:object:root=true
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 63",message="metadata.name of an IdPTokenBinding must be at most 63 characters: it is written as a label value on the Secret"
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=idptb,categories=idptoken
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Secret",type=string,JSONPath=`.spec.secret.name`
// +kubebuilder:printcolumn:name="Expires",type=string,JSONPath=`.status.expiresAt`
// +kubebuilder:printcolumn:name="Next Refresh",type=string,JSONPath=`.status.nextRefreshTime`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type IdPTokenBinding struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec says which token goes into which Secret.
	// +required
	Spec IdPTokenBindingSpec `json:"spec"`

	// status is what the operator observed.
	// +optional
	Status IdPTokenBindingStatus `json:"status,omitempty"`
}

// IdPTokenBindingList is a list of IdPTokenBinding.
// +kubebuilder:object:root=true
type IdPTokenBindingList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []IdPTokenBinding `json:"items"`
}
