// Package binding holds the decisions of the binding engine as pure functions: what a pass must
// do next (Next), what the token becomes after a read or a refresh, what the binding's status
// says (Report) and when the binding is looked at again (Requeue). The controller gathers the
// facts, performs the one I/O step Next names, records its result in the Pass, and asks again.
package binding

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"

	"golang.org/x/oauth2"

	authv1alpha1 "github.com/idptoken/idptoken-operator/api/v1alpha1"
	"github.com/idptoken/idptoken-operator/internal/expiry"
)

// Token is the token an identity's lineage holds, persisted in its refresh-state Secret. The
// state Secret is written before any target Secret, so that a rotated refresh token is never
// lost and a deleted or edited target Secret can be restored without calling anyone.
type Token struct {
	AccessToken       string
	AccessTokenSecret string
	RefreshToken      string
	// TokenType and Scope are what the IdP (or Token Vault) said of the access token, when it
	// said: templates may use them (spec.secret.template).
	TokenType string
	Scope     string
	// RefreshTokenDead: the IdP answered invalid_grant for RefreshToken; it is never sent again.
	RefreshTokenDead bool
	// RefreshUnsupported names why the operator cannot refresh through the identity's connection
	// (its strategy has no token endpoint the operator knows, or a client authentication it
	// cannot do): the refresh token is kept (includeRefreshToken may hand it to the app) but never
	// sent; the token is re-read from Auth0 at its expiry instead. Empty when refreshing works.
	RefreshUnsupported string
	// Auth0RefreshHash is the SHA-256 of Auth0's copy of the refresh token this lineage came
	// from. A different copy in Auth0 means the user logged in again, and Auth0's copy wins.
	Auth0RefreshHash string

	Expiry      expiry.Result
	RenewAt     time.Time // when to renew, whole seconds
	ObtainedAt  time.Time // when the access token was obtained (last renewal)
	LastRefresh time.Time // last successful refresh at the IdP
	// Auth0ReadAt is when the lineage last read Auth0 successfully (nanoseconds): an Auth0 event
	// received after it asks for a read (TriggerAuth0Event), one received before it does not.
	Auth0ReadAt time.Time

	// Lineage is the hash of the identity the token was read for (kept under the state key
	// "source", as earlier versions wrote it).
	Lineage  string
	Identity authv1alpha1.IdentityStatus

	// Endpoint is the IdP token endpoint and OAuth client ID last used for the connection (never
	// the client secret), so that a restarted manager can refresh while Auth0 is unreachable.
	Endpoint Endpoint
}

// Endpoint is the persisted part of an IdP token endpoint: no client secret.
type Endpoint struct {
	TokenURL  string
	ClientID  string
	AuthStyle oauth2.AuthStyle
	Provider  string
}

// Keys of the refresh-state Secret. Internal to the operator; not a contract for pods.
const (
	stateAccessToken        = "access_token"
	stateAccessTokenSecret  = "access_token_secret"
	stateRefreshToken       = "refresh_token"
	stateRefreshTokenDead   = "refresh_token_dead"
	stateRefreshUnsupported = "refresh_unsupported"
	stateTokenType          = "token_type"
	stateScope              = "scope"
	stateAuth0RefreshHash   = "auth0_refresh_token_sha256"
	stateExpiresAt          = "expires_at"
	stateIssuedAt           = "issued_at"
	stateExpirySource       = "expiry_source"
	stateRenewAt            = "renew_at"
	stateObtainedAt         = "obtained_at"
	stateLastRefresh        = "last_refresh_at"
	stateAuth0ReadAt        = "auth0_read_at"
	stateLineage            = "source"
	stateProvider           = "provider"
	stateConnection         = "connection"
	stateIdentityUserID     = "identity_user_id"
	stateTokenURL           = "idp_token_url"
	stateClientID           = "idp_client_id"
	stateAuthStyle          = "idp_auth_style"
	stateEndpointProvider   = "idp_provider"
)

// HashToken is the hex SHA-256 of a token; "" for none.
func HashToken(t string) string {
	if t == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// FormatTime renders a time as RFC 3339 in UTC; nil for the zero time.
func FormatTime(t time.Time) []byte {
	if t.IsZero() {
		return nil
	}
	return []byte(t.UTC().Format(time.RFC3339))
}

// parseTime reads RFC 3339 times, with or without fractional seconds.
func parseTime(b []byte) time.Time {
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}
	}
	return t.UTC()
}

// StateData serialises the token into the refresh-state Secret's data.
func (t *Token) StateData() map[string][]byte {
	d := map[string][]byte{
		stateAccessToken:      []byte(t.AccessToken),
		stateExpirySource:     []byte(t.Expiry.Source),
		stateLineage:          []byte(t.Lineage),
		stateProvider:         []byte(t.Identity.Provider),
		stateConnection:       []byte(t.Identity.Connection),
		stateIdentityUserID:   []byte(t.Identity.UserID),
		stateRefreshTokenDead: []byte(strconv.FormatBool(t.RefreshTokenDead)),
	}
	put := func(k string, v []byte) {
		if len(v) > 0 {
			d[k] = v
		}
	}
	put(stateAccessTokenSecret, []byte(t.AccessTokenSecret))
	put(stateRefreshUnsupported, []byte(t.RefreshUnsupported))
	put(stateTokenType, []byte(t.TokenType))
	put(stateScope, []byte(t.Scope))
	put(stateRefreshToken, []byte(t.RefreshToken))
	put(stateAuth0RefreshHash, []byte(t.Auth0RefreshHash))
	put(stateExpiresAt, FormatTime(t.Expiry.ExpiresAt))
	put(stateIssuedAt, FormatTime(t.Expiry.IssuedAt))
	put(stateRenewAt, FormatTime(t.RenewAt))
	put(stateObtainedAt, FormatTime(t.ObtainedAt))
	put(stateLastRefresh, FormatTime(t.LastRefresh))
	if !t.Auth0ReadAt.IsZero() {
		put(stateAuth0ReadAt, []byte(t.Auth0ReadAt.UTC().Format(time.RFC3339Nano)))
	}
	if ep := t.Endpoint; ep.TokenURL != "" {
		put(stateTokenURL, []byte(ep.TokenURL))
		put(stateClientID, []byte(ep.ClientID))
		put(stateAuthStyle, []byte(strconv.Itoa(int(ep.AuthStyle))))
		put(stateEndpointProvider, []byte(ep.Provider))
	}
	return d
}

// ParseState reads a token from a refresh-state Secret's data; nil when it holds none. Any
// bytes are accepted: what does not parse is treated as absent (an unknown time is zero).
func ParseState(d map[string][]byte) *Token {
	if len(d[stateAccessToken]) == 0 {
		return nil
	}
	dead, _ := strconv.ParseBool(string(d[stateRefreshTokenDead]))
	t := &Token{
		AccessToken:        string(d[stateAccessToken]),
		AccessTokenSecret:  string(d[stateAccessTokenSecret]),
		RefreshToken:       string(d[stateRefreshToken]),
		RefreshTokenDead:   dead,
		RefreshUnsupported: string(d[stateRefreshUnsupported]),
		TokenType:          string(d[stateTokenType]),
		Scope:              string(d[stateScope]),
		Auth0RefreshHash:   string(d[stateAuth0RefreshHash]),
		Expiry: expiry.Result{
			ExpiresAt: parseTime(d[stateExpiresAt]),
			IssuedAt:  parseTime(d[stateIssuedAt]),
			Source:    authv1alpha1.ExpirySource(d[stateExpirySource]),
		},
		RenewAt:     parseTime(d[stateRenewAt]),
		ObtainedAt:  parseTime(d[stateObtainedAt]),
		LastRefresh: parseTime(d[stateLastRefresh]),
		Auth0ReadAt: parseTime(d[stateAuth0ReadAt]),
		Lineage:     string(d[stateLineage]),
		Identity: authv1alpha1.IdentityStatus{
			Provider:   string(d[stateProvider]),
			Connection: string(d[stateConnection]),
			UserID:     string(d[stateIdentityUserID]),
		},
	}
	if u := string(d[stateTokenURL]); u != "" {
		style, _ := strconv.Atoi(string(d[stateAuthStyle]))
		t.Endpoint = Endpoint{TokenURL: u, ClientID: string(d[stateClientID]), AuthStyle: oauth2.AuthStyle(style), Provider: string(d[stateEndpointProvider])}
	}
	return t
}

// CanRefresh tells whether the refresh token may be sent to the IdP.
func (t *Token) CanRefresh() bool {
	return t != nil && t.RefreshToken != "" && !t.RefreshTokenDead && t.RefreshUnsupported == ""
}

// NeedsFirstRefresh tells whether a token just read from Auth0 is refreshed at once: its expiry
// is Estimated (last_login is the user's last login through any identity, so a linked
// identity's token may have expired long before the estimate), its lineage has never been
// refreshed, and its refresh token can be sent. The refresh gives the IdP's own expires_in.
func (t *Token) NeedsFirstRefresh() bool {
	return t.Expiry.Source == authv1alpha1.ExpirySourceEstimated && t.LastRefresh.IsZero() && t.CanRefresh()
}

// ValidAt tells whether the access token is usable at now; an unknown expiry counts as valid.
func (t *Token) ValidAt(now time.Time) bool {
	return t != nil && (t.Expiry.ExpiresAt.IsZero() || now.Before(t.Expiry.ExpiresAt))
}

// ExpiryText describes when the token expires, for messages.
func (t *Token) ExpiryText() string {
	if t == nil || t.Expiry.ExpiresAt.IsZero() {
		return "at an unknown time"
	}
	return "at " + t.Expiry.ExpiresAt.Format(time.RFC3339)
}
