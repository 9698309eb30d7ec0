package v1alpha1

// Labels, annotations and keys that users and other tools depend on.
const (
	// LabelManagedBy marks every object the operator manages; only Secrets carrying it are cached.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// ManagedByValue is the value of LabelManagedBy on the operator's objects.
	ManagedByValue = "idptoken-operator"
	// LabelBinding names the IdPTokenBinding a Secret belongs to.
	LabelBinding = "auth.idptoken.dev/binding"
	// LabelRole tells the binding's Secrets apart; see RoleRefreshState.
	LabelRole = "auth.idptoken.dev/role"
	// RoleRefreshState is the LabelRole value of the Secret that holds an identity's newest refresh token.
	RoleRefreshState = "refresh-state"
	// LabelIdentity carries the 16 hex digits that name an identity's refresh-state Secret.
	LabelIdentity = "auth.idptoken.dev/identity"
	// LabelOAuthClient must be "true" on a Secret that spec.refresh.clientCredentialsSecretRef names.
	LabelOAuthClient = "auth.idptoken.dev/oauth-client"

	// AnnotationTenant names the tenant (Kind/namespace/name) of a refresh-state Secret.
	AnnotationTenant = "auth.idptoken.dev/tenant"
	// AnnotationUserID names the Auth0 user of a refresh-state Secret (empty for connection identities).
	AnnotationUserID = "auth.idptoken.dev/user-id"
	// AnnotationBindingUID carries the UID of the binding that wrote a target Secret: with the
	// labels, it proves the Secret is that binding's (a Retain Secret has no ownerReference).
	AnnotationBindingUID = "auth.idptoken.dev/binding-uid"
	// AnnotationRefreshClaim on a refresh-state Secret: the manager refreshing the identity at
	// the IdP and until when its claim holds (<holder> <RFC 3339 time>), so that at most one
	// refresh of an identity is in flight across every manager.
	AnnotationRefreshClaim = "auth.idptoken.dev/refresh-claim"
	// AnnotationForceRefresh on a binding: any new value refreshes (or re-reads) its token once.
	AnnotationForceRefresh = "auth.idptoken.dev/force-refresh"

	// AnnotationExpiresAt carries the token's expiry (RFC 3339, UTC) on the target Secret.
	AnnotationExpiresAt = "auth.idptoken.dev/expires-at"
	// AnnotationProvider carries the identity provider (e.g. google-oauth2) on the target Secret.
	AnnotationProvider = "auth.idptoken.dev/provider"
	// AnnotationConnection carries the Auth0 connection name on the target Secret.
	AnnotationConnection = "auth.idptoken.dev/connection"

	// SecretKeyAccessToken is the target Secret key holding the access token.
	SecretKeyAccessToken = "access_token"
	// SecretKeyExpiresAt is the target Secret key holding the expiry (RFC 3339, UTC) when known.
	SecretKeyExpiresAt = "expires_at"
	// SecretKeyRefreshToken is the target Secret key holding the refresh token with includeRefreshToken.
	SecretKeyRefreshToken = "refresh_token"
	// SecretKeyAccessTokenSecret is the target Secret key holding an OAuth 1.0a token secret when the IdP has one.
	SecretKeyAccessTokenSecret = "access_token_secret"

	// FinalizerRetain lets the operator release a target Secret kept by deletionPolicy Retain.
	FinalizerRetain = "auth.idptoken.dev/retain"
)

// Condition types.
const (
	// ConditionReady is True when the object does its job: a tenant can authenticate, a
	// binding's Secret holds the current, unexpired token.
	ConditionReady = "Ready"
	// ConditionSyncFailing is True on a binding whose last attempt failed while its Secret
	// still holds a valid token, so Ready stays True.
	ConditionSyncFailing = "SyncFailing"
	// ConditionReconciling is True while the operator is working towards Ready (kstatus).
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the object cannot become Ready without a change by a
	// person: a spec, tenant, policy or Secret to fix (kstatus).
	ConditionStalled = "Stalled"
)

// SecretKeysRef names a Secret in the object's namespace holding an OAuth client ID and secret.
type SecretKeysRef struct {
	// name of the Secret, in the same namespace.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// clientIDKey is the key of the client ID in the Secret.
	// +optional
	// +kubebuilder:default=client_id
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClientIDKey string `json:"clientIDKey,omitempty"`

	// clientSecretKey is the key of the client secret in the Secret.
	// +optional
	// +kubebuilder:default=client_secret
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	ClientSecretKey string `json:"clientSecretKey,omitempty"`
}

// ClientIDKeyOrDefault returns the key of the client ID, defaulted when empty (objects not defaulted by the API server).
func (r *SecretKeysRef) ClientIDKeyOrDefault() string {
	if r.ClientIDKey == "" {
		return "client_id"
	}
	return r.ClientIDKey
}

// ClientSecretKeyOrDefault returns the key of the client secret, defaulted when empty.
func (r *SecretKeysRef) ClientSecretKeyOrDefault() string {
	if r.ClientSecretKey == "" {
		return "client_secret"
	}
	return r.ClientSecretKey
}
