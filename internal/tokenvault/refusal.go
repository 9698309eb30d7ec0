package tokenvault

import (
	"net/http"
	"regexp"
	"strings"
)

// Refusal names the setting of the worker application that made Auth0 refuse an exchange, so
// that the tenant's TokenVaultReady condition says what to fix.
type Refusal string

const (
	// RefusalClientAuth: Auth0 did not authenticate the client (401 invalid_client, or
	// access_denied "Unauthorized"): wrong client_id, key or secret.
	RefusalClientAuth Refusal = "ClientAuthentication"
	// RefusalIPAllowlist: the request came from an address outside the application's
	// Privileged Worker IP allowlist (403).
	RefusalIPAllowlist Refusal = "IPAllowlist"
	// RefusalGrantType: the application does not have the Token Vault grant type (403
	// unauthorized_client, "Grant type ... not allowed for the client").
	RefusalGrantType Refusal = "GrantType"
	// RefusalConnectionGrant: the connection or scope is not among the application's
	// Privileged Worker permissions (token_vault_privileged_access.grants) (403).
	RefusalConnectionGrant Refusal = "ConnectionGrant"
)

// hint is the plain-language reading appended to an Error's text.
func (r Refusal) hint() string {
	switch r {
	case RefusalClientAuth:
		return "Auth0 did not accept the Token Vault worker client: check client_id and private_key (or client_secret) in the credentials Secret against the application"
	case RefusalIPAllowlist:
		return "the operator's address is outside the worker application's Privileged Worker IP allowlist"
	case RefusalGrantType:
		return "the worker application does not have the Token Vault grant type (" + GrantType + ")"
	case RefusalConnectionGrant:
		return "the connection or its scopes are not in the worker application's Privileged Worker permissions (grants)"
	}
	return ""
}

var (
	// ipAllowlist matches Auth0's wording of an address refusal: "IP ... not allowed",
	// "allowlist", "allow-list", "whitelist".
	ipAllowlist = regexp.MustCompile(`(?i)allow[- ]?list|white[- ]?list|\bip\b`)
	grantType   = regexp.MustCompile(`(?i)grant[ _]type`)
	// connectionGrant matches a refusal of the connection or scope by the worker's grants.
	connectionGrant = regexp.MustCompile(`(?i)\bgrants?\b|permission|connection|scope`)
)

// classify maps a non-2xx status, the OAuth error code and description as received (before
// scrubbing, so that scrubbing can never change the answer) to a kind and, for a client
// refusal, what was refused.
func classify(status int, code, description string) (Kind, Refusal) {
	switch {
	case status == http.StatusUnauthorized && isClientAuthFailure(code, description):
		return ClientAuthFailed, RefusalClientAuth
	case status == http.StatusUnauthorized:
		return IdentityNotFound, ""
	case status == http.StatusForbidden:
		return NotAuthorized, forbiddenRefusal(code, description)
	case status == http.StatusTooManyRequests:
		return RateLimited, ""
	case status >= 400 && status < 500:
		return BadRequest, ""
	default: // 5xx, and 1xx/3xx which a token endpoint never sends on purpose
		return Transient, ""
	}
}

// isClientAuthFailure: invalid_client (RFC 6749 §5.2), or Auth0's access_denied with the bare
// description "Unauthorized", which it sends for a client it does not know or whose secret or
// assertion is wrong. An access_denied with any other description (no linked account, an
// expired vaulted token) is about the user.
func isClientAuthFailure(code, description string) bool {
	if code == "invalid_client" {
		return true
	}
	d := strings.TrimRight(strings.TrimSpace(description), ".")
	return code == "access_denied" && strings.EqualFold(d, "unauthorized")
}

func forbiddenRefusal(code, description string) Refusal {
	switch {
	case ipAllowlist.MatchString(description):
		return RefusalIPAllowlist
	case code == "unauthorized_client" || grantType.MatchString(description):
		return RefusalGrantType
	case connectionGrant.MatchString(description):
		return RefusalConnectionGrant
	}
	return ""
}
