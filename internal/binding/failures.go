package binding

import (
	"fmt"
	"strings"
	"time"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
)

// The failures a pass can report, one constructor each: which reason, terminal or retried, and
// when to look again are decided here, from what the controller observed (an ErrorKind and the
// error's text, already scrubbed of secrets by the client that produced it), never in the
// controller. Each is table-tested in failures_test.go.

// ErrorKind is how an outside service's error bears on the binding.
type ErrorKind int

const (
	// ErrorOther: 5xx, a timeout, a malformed answer: retried with backoff.
	ErrorOther ErrorKind = iota
	// ErrorNotFound: the object asked for does not exist (404): terminal until a change.
	ErrorNotFound
	// ErrorRefused: the tenant's credentials were refused (401/403): the tenant's problem.
	ErrorRefused
)

// OutsideError is an error of Auth0, an IdP or Token Vault as the controller saw it.
type OutsideError struct {
	Kind ErrorKind
	// Text is the error's message; clients scrub every secret from it.
	Text string
	// RetryAfter is the server's Retry-After, if it sent one.
	RetryAfter time.Duration
}

// ManagementFailure is the failure of a Management API request for what (such as `reading user
// "x"`): 404 is terminal with the notFound reason, 401/403 are a tenant problem, the rest back off
// (at least the server's Retry-After).
func ManagementFailure(t Tenant, e OutsideError, notFound, what string) *Failure {
	switch e.Kind {
	case ErrorNotFound:
		return Terminal(notFound, 0, "Auth0 says %s failed: %s", what, e.Text)
	case ErrorRefused:
		return Transient(authv1alpha1.ReasonTenantNotReady, "%s %s was refused %s: %s", t.Kind, t.Name, what, e.Text)
	}
	f := Transient(authv1alpha1.ReasonManagementAPIError, "The Auth0 Management API failed %s: %s", what, e.Text)
	f.NotBefore = e.RetryAfter
	return f
}

// UserDeleted: Auth0 reported the binding's user deleted and a read confirmed it (read says how):
// the token is forgotten and the binding's Secrets deleted. Terminal with read's reason.
func UserDeleted(b *authv1alpha1.IdPTokenBinding, read *Failure) *Failure {
	return Terminal(read.Reason, 0, "Auth0 reported the user deleted (event user.deleted) and reading it confirmed it (%s); the token was forgotten and Secret %s deleted",
		read.Message, b.Spec.Secret.Name)
}

// TenantNotReady: the tenant's client cannot be used; conditionMessage is its Ready condition's
// message, if any.
func TenantNotReady(t Tenant, conditionMessage string) *Failure {
	if conditionMessage == "" {
		conditionMessage = "it has not authenticated yet"
	}
	return Transient(authv1alpha1.ReasonTenantNotReady, "%s %s is not ready: %s", t.Kind, t.Name, conditionMessage)
}

// NoUserAccessToken: Auth0 holds no access token for the user's identity.
func NoUserAccessToken(b *authv1alpha1.IdPTokenBinding, userID, connection string) *Failure {
	return Terminal(authv1alpha1.ReasonNoAccessToken, FallbackInterval(b),
		"Auth0 holds no access token for user %q's %s identity; the user must log in through that connection (and the M2M app needs read:user_idp_tokens)", userID, connection)
}

// NoAdminAccessToken: the enterprise connection holds no admin access token.
func NoAdminAccessToken(b *authv1alpha1.IdPTokenBinding, connection string) *Failure {
	return Terminal(authv1alpha1.ReasonNoAccessToken, FallbackInterval(b),
		"Connection %q holds no admin access token; complete its admin consent flow (and the M2M app needs read:connections_options)", connection)
}

// IdentityNotLinked: the user has no identity linked through connection; linked names those it has.
func IdentityNotLinked(userID, connection string, linked []string) *Failure {
	return Terminal(authv1alpha1.ReasonIdentityNotFound, 0,
		"User %q has no identity linked through connection %q (linked: %s)", userID, connection, strings.Join(linked, ", "))
}

// TokenVaultEnabled: the connection keeps its tokens in Token Vault, so identities[] holds none.
func TokenVaultEnabled(b *authv1alpha1.IdPTokenBinding, t Tenant, connection string) *Failure {
	return Terminal(authv1alpha1.ReasonTokenVaultEnabled, FallbackInterval(b),
		"Connection %q keeps its tokens in Auth0 Token Vault, so identities[] holds none: set spec.user.source: TokenVault (and give tenant %s a spec.tokenVault)",
		connection, t.Name)
}

// VaultKind is how a Token Vault exchange failed.
type VaultKind int

const (
	// VaultOther: retried with backoff (at least the server's Retry-After).
	VaultOther VaultKind = iota
	// VaultNoToken: no linked account, or the subject token was refused.
	VaultNoToken
	// VaultClientRefused: Auth0 refused the tenant's Token Vault client.
	VaultClientRefused
)

// NoTokenVault: the tenant has no usable spec.tokenVault.
func NoTokenVault(t Tenant) *Failure {
	return Terminal(authv1alpha1.ReasonTenantNotReady, time.Minute,
		"%s %s has no usable spec.tokenVault (see its %s condition); spec.user.source TokenVault needs one",
		t.Kind, t.Name, authv1alpha1.ConditionTokenVaultReady)
}

// VaultExchangeFailure is the failure of a Token Vault exchange for binding b.
func VaultExchangeFailure(b *authv1alpha1.IdPTokenBinding, t Tenant, kind VaultKind, e OutsideError) *Failure {
	switch kind {
	case VaultNoToken:
		return Terminal(authv1alpha1.ReasonIdentityNotFound, FallbackInterval(b),
			"Auth0 Token Vault has no token for user %q through connection %q (the user must connect the account, or the subject token was refused): %s",
			b.Spec.User.ID, b.Spec.User.Connection, e.Text)
	case VaultClientRefused:
		return Transient(authv1alpha1.ReasonTenantNotReady, "%s %s: Auth0 refused its Token Vault client: %s", t.Kind, t.Name, e.Text)
	}
	f := Transient(authv1alpha1.ReasonManagementAPIError, "Auth0 Token Vault's token exchange failed: %s", e.Text)
	f.NotBefore = e.RetryAfter
	return f
}

// The failures of spec.refresh.clientCredentialsSecretRef.

// OverrideClientNotFound: the Secret it names does not exist.
func OverrideClientNotFound(b *authv1alpha1.IdPTokenBinding) *Failure {
	return Terminal(authv1alpha1.ReasonInvalidRefreshConfig, time.Minute,
		"spec.refresh.clientCredentialsSecretRef: Secret %q not found in namespace %s", b.Spec.Refresh.ClientCredentialsSecretRef.Name, b.Namespace)
}

// OverrideClientUnreadable: reading the Secret's metadata failed (an API-server error).
func OverrideClientUnreadable(errText string) *Failure {
	return Transient(authv1alpha1.ReasonRefreshFailed, "Reading spec.refresh.clientCredentialsSecretRef: %s", errText)
}

// OverrideClientNotLabelled: the Secret is not labelled as an OAuth client; nothing is read from it.
func OverrideClientNotLabelled(b *authv1alpha1.IdPTokenBinding) *Failure {
	return Terminal(authv1alpha1.ReasonInvalidRefreshConfig, time.Minute,
		"spec.refresh.clientCredentialsSecretRef: Secret %q is not labelled %s: \"true\"; only Secrets made to hold an OAuth client may be used",
		b.Spec.Refresh.ClientCredentialsSecretRef.Name, authv1alpha1.LabelOAuthClient)
}

// OverrideClientInvalid: the Secret lacks its keys.
func OverrideClientInvalid(errText string) *Failure {
	return Terminal(authv1alpha1.ReasonInvalidRefreshConfig, time.Minute, "Reading spec.refresh.clientCredentialsSecretRef: %s", errText)
}

// OverrideClientUnusable: a refresh needs the override client, which could not be read.
func OverrideClientUnusable() *Failure {
	return Terminal(authv1alpha1.ReasonInvalidRefreshConfig, 0, "spec.refresh.clientCredentialsSecretRef could not be used")
}

// NoRefreshEndpoint: the connection gives no token endpoint to refresh at.
func NoRefreshEndpoint(b *authv1alpha1.IdPTokenBinding, connection, errText string) *Failure {
	return Terminal(authv1alpha1.ReasonRefreshFailed, FallbackInterval(b), "Cannot refresh through connection %q: %s", connection, errText)
}

// RefreshUnsupportedMessage says why the binding is not Ready although its Secret holds the
// token read from Auth0: the operator cannot refresh through the token's connection.
func RefreshUnsupportedMessage(b *authv1alpha1.IdPTokenBinding, t *Token) string {
	return fmt.Sprintf("The operator cannot refresh this token at the identity provider (%s). Secret %s holds the token read from Auth0, which expires %s; it is read from Auth0 again at %s, and only a new login through connection %q gives a new one",
		t.RefreshUnsupported, b.Spec.Secret.Name, t.ExpiryText(), t.RenewAt.UTC().Format(time.RFC3339), t.Identity.Connection)
}

// RefreshRejected: the IdP answered invalid_grant; Auth0 is read next.
func RefreshRejected(errText string) *Failure {
	return Transient(authv1alpha1.ReasonRefreshFailed, "The identity provider rejected the refresh token: %s", errText)
}

// RefreshError: the refresh failed otherwise (network, 5xx, client trouble).
func RefreshError(errText string) *Failure {
	return Transient(authv1alpha1.ReasonRefreshFailed, "Refreshing the token at the identity provider failed: %s", errText)
}

// TargetConflict: a Secret of the target name exists that is not the binding's.
func TargetConflict(name string) *Failure {
	return Terminal(authv1alpha1.ReasonSecretConflict, time.Minute,
		"Secret %q exists and is not managed by this binding; delete it or choose another spec.secret.name", name)
}

// TargetWriteRefused: the API server refused the target Secret (4xx): a spec problem, not retried
// in a hot loop.
func TargetWriteRefused(name, errText string) *Failure {
	return Terminal(authv1alpha1.ReasonSecretWriteFailed, 5*time.Minute, "The API server refused to write Secret %s: %s", name, errText)
}

// ForeignState: a Secret of the state's name is not the identity's state (AcceptState refused
// it, for why); it is neither used nor overwritten.
func ForeignState(namespace, name, why string) *Failure {
	return Terminal(authv1alpha1.ReasonSecretConflict, time.Minute,
		"Secret %s/%s has the name of the identity's refresh state but %s; it is not used nor overwritten: delete it so that the operator can keep the identity's refresh state",
		namespace, name, why)
}
