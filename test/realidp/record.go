package realidp

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"time"
)

// Fingerprint identifies a secret value without revealing it: the first 16 hex digits of its
// SHA-256, or "" for "". Tests compare fingerprints, so that a failed assertion prints no token.
func Fingerprint(secret string) string {
	if secret == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:8])
}

// Caller says who sent a request to the IdP's token endpoint.
type Caller string

const (
	// CallerTest is the test itself (a login, a replay), marked by CallerHeader.
	CallerTest Caller = "test"
	// CallerOperator is everyone else: the operator under test.
	CallerOperator Caller = "operator"
)

// CallerHeader marks the requests the test sends itself.
const CallerHeader = "X-Realidp-Caller"

// Client authentication methods at the token endpoint (RFC 7591 token_endpoint_auth_method).
const (
	AuthClientSecretPost  = "client_secret_post"
	AuthClientSecretBasic = "client_secret_basic"
	// AuthNone is a request that carried no client secret.
	AuthNone = "none"
)

// Exchange is one request to the IdP's token endpoint and what came of it.
type Exchange struct {
	Caller   Caller
	ClientID string
	// Grant is the grant_type sent: authorization_code, refresh_token, ...
	Grant string
	// AuthMethod is how the request authenticated the client (AuthClientSecretPost, ...).
	AuthMethod string
	// Subject is the user the tokens are for; "" when the request failed before fosite knew.
	Subject string
	// Error is the OAuth 2.0 error code of a refused request, "" on success.
	Error string
	// Presented is the fingerprint of the refresh token sent (refresh grant).
	Presented string
	// Access and Refresh are the fingerprints of the tokens issued.
	Access, Refresh string
	// At is when the request arrived.
	At time.Time
}

// authMethodOf tells how r authenticated its client. The form must have been parsed.
func authMethodOf(r *http.Request) string {
	if _, secret, ok := r.BasicAuth(); ok && secret != "" {
		return AuthClientSecretBasic
	}
	if r.PostForm.Get("client_secret") != "" {
		return AuthClientSecretPost
	}
	return AuthNone
}

// clientIDOf is the client a request names, also when fosite refused it.
func clientIDOf(r *http.Request) string {
	if id, _, ok := r.BasicAuth(); ok {
		return id
	}
	return r.PostForm.Get("client_id")
}

// callerOf tells the test's own requests from the operator's.
func callerOf(r *http.Request) Caller {
	if r.Header.Get(CallerHeader) == string(CallerTest) {
		return CallerTest
	}
	return CallerOperator
}
