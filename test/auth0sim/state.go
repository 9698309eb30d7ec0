/*
Copyright 2026 The idptoken-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package auth0sim

import (
	"fmt"
	"maps"
	"net/url"
	"strings"
	"time"
)

// idpScope is the scope reported for IdP-issued tokens.
const idpScope = "openid profile email offline_access"

// RotationMode selects how an IdP treats refresh tokens.
type RotationMode string

const (
	// RotationNone is Google-like: a refresh response carries no
	// refresh_token and the original refresh token keeps working.
	RotationNone RotationMode = "none"
	// RotationRotate is Microsoft-like: every refresh response carries a new
	// refresh token, and the previous one keeps working too.
	RotationRotate RotationMode = "rotate"
	// RotationStrict is GitHub-like: a refresh token works exactly once and
	// every refresh response carries its successor. Reusing a spent token
	// gets 400 {"error":"invalid_grant"}.
	RotationStrict RotationMode = "strict"
)

// IdPOptions describes a simulated third-party IdP token endpoint, served at
// TokenURL(Name).
type IdPOptions struct {
	// Name identifies the IdP in URLs (/idp/<Name>/token) and in
	// IdentitySpec.IdP / ConnectionSpec.IdP. Required.
	Name string
	// ClientID and ClientSecret authenticate clients of the token endpoint,
	// in the form body or with HTTP Basic. ClientID is required.
	ClientID, ClientSecret string
	// Rotation is the refresh-token rotation mode; "" means RotationNone.
	Rotation RotationMode
	// AccessTokenLifetime of issued access tokens; default 1h.
	AccessTokenLifetime time.Duration
	// JWT makes access tokens unsigned-JWT-shaped with iat/exp/sub claims
	// (see TokenPattern); otherwise they are opaque.
	JWT bool
	// OmitExpiresIn leaves expires_in out of refresh responses and out of
	// the identities Auth0 returns (like GitHub apps without expiring
	// tokens would, while the tokens still expire here).
	OmitExpiresIn bool
	// ReplyDelay holds the reply to every valid refresh grant this long
	// (on Options.Clock) after the request arrived, and makes the IdP commit
	// the grant only when it delivers the reply (see "Refresh commit" in
	// the package documentation). 0 answers at once.
	ReplyDelay time.Duration
	// ContentType, when set, labels the IdP's JSON answers (successes and
	// errors) instead of application/json, e.g. "text/plain; charset=utf-8"
	// as some IdPs do. The body stays JSON.
	ContentType string
	// GitHubErrors answers refresh-grant errors as GitHub does: HTTP 200
	// with the error in the body, bad_refresh_token instead of invalid_grant
	// (a dead refresh token) and incorrect_client_credentials instead of
	// invalid_client, each with GitHub's description and error_uri.
	GitHubErrors bool
	// Observe, when set, is told how each refresh grant at this IdP
	// progresses (see IdPEvent). It is called synchronously from the
	// request's handler, without locks held, and must return quickly. It
	// never receives a token value.
	Observe func(IdPEvent)
}

// IdPEventKind is a step of a refresh grant at an IdP.
type IdPEventKind string

const (
	// IdPRefreshArrived: an authenticated refresh grant arrived; the refresh
	// token has not been checked yet.
	IdPRefreshArrived IdPEventKind = "arrived"
	// IdPRefreshCommitted: the grant succeeded, its new tokens exist (a
	// strict IdP's refresh token is spent), and the reply is being written.
	IdPRefreshCommitted IdPEventKind = "committed"
	// IdPRefreshAbandoned: the client went away while ReplyDelay held the
	// reply, so nothing was committed.
	IdPRefreshAbandoned IdPEventKind = "abandoned"
)

// IdPEvent is one step of a refresh grant, as passed to IdPOptions.Observe.
type IdPEvent struct {
	IdP  string
	Kind IdPEventKind
	// At is Options.Clock's time of the step.
	At time.Time
}

// IdentitySpec describes one identity linked to an Auth0 user.
type IdentitySpec struct {
	// Connection is the Auth0 connection name, e.g. "google-oauth2".
	Connection string
	// Provider is the identity provider, e.g. "google-oauth2"; the user's
	// user_id is Provider|UserID of the first identity.
	Provider string
	// UserID is the user's ID at the provider.
	UserID string
	// IsSocial is rendered as isSocial.
	IsSocial bool
	// IdP names the AddIdP endpoint that issues this identity's tokens.
	// Empty means the identity carries no tokens (like an Auth0 database
	// identity).
	IdP string
	// OfflineAccess gives the identity a refresh_token. Requires IdP.
	OfflineAccess bool
	// NumericUserID renders user_id as a JSON number (like GitHub). UserID
	// must then consist of decimal digits.
	NumericUserID bool
	// AccessTokenSecret adds an access_token_secret (Twitter-like).
	AccessTokenSecret bool
}

// ConnectionSpec describes an Auth0 connection.
type ConnectionSpec struct {
	// ID, e.g. "con_abc123". When empty, a random "con_..." ID is generated
	// (find it with GET /api/v2/connections?name=).
	ID string
	// Name is the connection name; unique within the tenant. Required.
	Name string
	// Strategy, e.g. "oauth2", "google-apps", "waad". Required.
	Strategy string
	// IdP, when set, fills options.client_id and options.client_secret
	// from that IdP, and options.tokenURL = TokenURL(IdP) when Strategy is
	// "oauth2".
	IdP string
	// AdminTokens adds options.admin_access_token, admin_refresh_token and
	// admin_access_token_expiresin (absolute ISO 8601 UTC time), issued by
	// IdP at AddConnection time. Requires IdP.
	AdminTokens bool
	// TenantDomain, when set, is rendered as options.tenant_domain.
	TenantDomain string
	// TokenVault enables Token Vault on the connection: it is rendered as
	// options.federated_connections_access_tokens.active = true and as the
	// newer top-level connected_accounts.active = true, its
	// identities carry no tokens in identities[], and their tokens are
	// served by the Token Vault exchange instead (see AddTokenVaultClient).
	TokenVault bool
	// OIDC, for a connection of strategy "oidc" or "okta" with an IdP, says
	// how its options name the IdP's token endpoint (see OIDCEndpoint);
	// empty renders none of them. The connection then has its own issuer
	// (IssuerURL), discovery document (DiscoveryURL) and token endpoint
	// (ConnectionTokenURL), which serves refresh grants of its IdP.
	OIDC OIDCEndpoint
	// TokenEndpointAuthMethod (ClientSecretBasic or ClientSecretPost; needs
	// OIDC) is rendered as options.token_endpoint_auth_method and is the only
	// client authentication ConnectionTokenURL accepts, like a strict
	// server; empty accepts both and renders nothing.
	TokenEndpointAuthMethod string
}

type m2mClient struct {
	secret string
	scopes []string
}

type m2mToken struct {
	clientID  string
	scopes    map[string]bool
	expiresAt time.Time
}

type idp struct {
	opts IdPOptions // with defaults applied
}

type accessToken struct {
	idp       string
	expiresAt time.Time
}

// refreshToken is one IdP refresh token. userID or connID records who it
// was originally issued for, so that DeleteUser can revoke the lineage.
type refreshToken struct {
	idp     string
	userID  string
	connID  string
	subject string
	spent   bool
	revoked bool
}

type identity struct {
	spec              IdentitySpec
	accessToken       string
	refreshToken      string
	accessTokenSecret string
	expiresIn         int64 // seconds, as of issuance (Auth0 does not update it)
	// expiresAt is when accessToken expires; Token Vault keeps it current.
	expiresAt time.Time
}

type user struct {
	id         string
	identities []*identity
	createdAt  time.Time
	updatedAt  time.Time
	lastLogin  time.Time
	logins     int
}

type connection struct {
	spec         ConnectionSpec
	adminAT      string
	adminRT      string
	adminExpires time.Time
}

// Stats are counters of what the server has done so far.
type Stats struct {
	// M2MTokensIssued counts successful client-credentials grants.
	M2MTokensIssued int
	// APIRequests counts every request to /api/v2, including rejected,
	// rate-limited and faulted ones.
	APIRequests int
	// UserReads counts authorised GET /api/v2/users/{id} requests per
	// requested user ID (including 404s for unknown users).
	UserReads map[string]int
	// ConnectionReads counts authorised GET /api/v2/connections requests
	// (by ID or list).
	ConnectionReads int
	// IdPRefreshes counts successful refresh grants per IdP name.
	IdPRefreshes map[string]int
	// InvalidGrants counts invalid_grant responses of the IdP endpoints.
	InvalidGrants int
	// IdPRefreshesAbandoned counts valid refresh grants that were not
	// committed because the client went away while IdPOptions.ReplyDelay
	// held the reply.
	IdPRefreshesAbandoned int
	// RateLimited counts 429 responses sent, including injected ones.
	RateLimited int
	// HangingRequests is the number of requests currently blocked by a
	// Hang fault.
	HangingRequests int

	// TokenVaultExchanges counts successful Token Vault exchanges.
	TokenVaultExchanges int
	// TokenVaultValidSubjectTokens and TokenVaultInvalidSubjectTokens count
	// the subject JWTs of authenticated exchange requests by the outcome
	// of their verification (a replayed jti counts as invalid).
	TokenVaultValidSubjectTokens   int
	TokenVaultInvalidSubjectTokens int
	// TokenVaultReplays counts subject tokens and client assertions refused
	// because their jti had been seen before.
	TokenVaultReplays int
	// TokenVaultRefreshes counts refreshes Token Vault made at an IdP (they
	// are counted in IdPRefreshes too).
	TokenVaultRefreshes int
}

func newStats() Stats {
	return Stats{UserReads: map[string]int{}, IdPRefreshes: map[string]int{}}
}

// AddM2MClient registers a client-credentials client ("M2M application")
// authorised for the Management API with the given scopes. Registering an
// existing client ID replaces it.
func (s *Server) AddM2MClient(clientID, clientSecret string, scopes ...string) {
	if clientID == "" {
		panic("auth0sim: AddM2MClient: empty client ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clients[clientID] = &m2mClient{secret: clientSecret, scopes: append([]string(nil), scopes...)}
}

// AddIdP registers a simulated IdP serving POST /idp/<Name>/token.
// Registering an existing name replaces its options; tokens already issued
// stay valid.
func (s *Server) AddIdP(o IdPOptions) {
	if o.Name == "" || o.ClientID == "" {
		panic("auth0sim: AddIdP: Name and ClientID are required")
	}
	switch o.Rotation {
	case "":
		o.Rotation = RotationNone
	case RotationNone, RotationRotate, RotationStrict:
	default:
		panic(fmt.Sprintf("auth0sim: AddIdP %q: unknown rotation mode %q", o.Name, o.Rotation))
	}
	if o.AccessTokenLifetime <= 0 {
		o.AccessTokenLifetime = defaultAccessTokenLifetime
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.idps[o.Name] = &idp{opts: o}
}

// TokenURL returns the full URL of the named IdP's token endpoint.
func (s *Server) TokenURL(idpName string) string {
	return s.url + "/idp/" + url.PathEscape(idpName) + "/token"
}

// AddUser creates (or replaces) an Auth0 user with the given linked
// identities, minting their initial tokens at the named IdPs; last_login is
// set to Clock.Now(). If identities are given, userID must equal
// Provider|UserID of the first (primary) one. Replacing a user revokes the
// previous user's refresh tokens, like DeleteUser.
func (s *Server) AddUser(userID string, identities ...IdentitySpec) {
	if userID == "" {
		panic("auth0sim: AddUser: empty user ID")
	}
	if len(identities) > 0 {
		if primary := identities[0].Provider + "|" + identities[0].UserID; primary != userID {
			panic(fmt.Sprintf("auth0sim: AddUser: user ID %q must be provider|user_id of the primary identity (%q)", userID, primary))
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, spec := range identities {
		s.validateIdentityLocked(userID, spec)
	}
	if _, ok := s.users[userID]; ok {
		s.deleteUserLocked(userID)
	}
	now := s.clk.Now()
	u := &user{id: userID, createdAt: now, updatedAt: now, lastLogin: now, logins: 1}
	for _, spec := range identities {
		id := &identity{spec: spec}
		s.issueIdentityTokensLocked(u, id, now)
		u.identities = append(u.identities, id)
	}
	s.users[userID] = u
}

func (s *Server) validateIdentityLocked(userID string, spec IdentitySpec) {
	if spec.Connection == "" || spec.Provider == "" || spec.UserID == "" {
		panic(fmt.Sprintf("auth0sim: AddUser %q: identity needs Connection, Provider and UserID", userID))
	}
	if spec.IdP != "" {
		if _, ok := s.idps[spec.IdP]; !ok {
			panic(fmt.Sprintf("auth0sim: AddUser %q: unknown IdP %q (call AddIdP first)", userID, spec.IdP))
		}
	} else if spec.OfflineAccess || spec.AccessTokenSecret {
		panic(fmt.Sprintf("auth0sim: AddUser %q: identity %q has OfflineAccess/AccessTokenSecret but no IdP", userID, spec.Connection))
	}
	if spec.NumericUserID && strings.Trim(spec.UserID, "0123456789") != "" {
		panic(fmt.Sprintf("auth0sim: AddUser %q: NumericUserID needs a decimal UserID", userID))
	}
}

// issueIdentityTokensLocked gives Auth0's copy of an identity a fresh access
// token and, with OfflineAccess, a new refresh token lineage.
func (s *Server) issueIdentityTokensLocked(u *user, id *identity, now time.Time) {
	if id.spec.IdP == "" {
		return
	}
	p := s.idps[id.spec.IdP]
	id.accessToken = s.mintAccessLocked(p, id.spec.UserID, now)
	id.expiresIn = int64(p.opts.AccessTokenLifetime / time.Second)
	id.expiresAt = now.Add(p.opts.AccessTokenLifetime)
	if id.spec.OfflineAccess {
		id.refreshToken = s.mintRefreshLocked(&refreshToken{idp: p.opts.Name, userID: u.id, subject: id.spec.UserID})
	}
	if id.spec.AccessTokenSecret {
		id.accessTokenSecret = opaqueToken(PrefixAccessTokenSecret)
	}
}

func (s *Server) mintAccessLocked(p *idp, subject string, now time.Time) string {
	exp := now.Add(p.opts.AccessTokenLifetime)
	var tok string
	if p.opts.JWT {
		tok = jwtToken(s.url+"/idp/"+url.PathEscape(p.opts.Name)+"/", subject, p.opts.ClientID, idpScope, now, exp)
	} else {
		tok = opaqueToken(PrefixAccessToken)
	}
	s.accessTokens[tok] = &accessToken{idp: p.opts.Name, expiresAt: exp}
	return tok
}

// mintRefreshLocked registers a new refresh token with tmpl's ownership.
func (s *Server) mintRefreshLocked(tmpl *refreshToken) string {
	tok := opaqueToken(PrefixRefreshToken)
	rt := *tmpl
	rt.spent, rt.revoked = false, false
	s.refreshTokens[tok] = &rt
	return tok
}

// Login simulates a new login of the user: Auth0's copy of every identity
// that has an IdP gets a fresh access token (and a new refresh token where
// OfflineAccess), and last_login becomes Clock.Now(). Refresh tokens issued
// before stay valid at the IdP until used (strict) or forever (none,
// rotate), like real IdPs. It panics for an unknown user.
func (s *Server) Login(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		panic(fmt.Sprintf("auth0sim: Login: unknown user %q", userID))
	}
	now := s.clk.Now()
	for _, id := range u.identities {
		s.issueIdentityTokensLocked(u, id, now)
	}
	u.lastLogin, u.updatedAt = now, now
	u.logins++
	s.publishUserLocked(EventUserUpdated, u, now)
}

// DeleteUser deletes the user and revokes every refresh token ever issued
// for its identities. Unknown users are ignored.
func (s *Server) DeleteUser(userID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[userID]; ok {
		s.publishUserLocked(EventUserDeleted, u, s.clk.Now())
	}
	s.deleteUserLocked(userID)
}

func (s *Server) deleteUserLocked(userID string) {
	if _, ok := s.users[userID]; !ok {
		return
	}
	delete(s.users, userID)
	for _, rt := range s.refreshTokens {
		if rt.userID == userID {
			rt.revoked = true
		}
	}
}

// AddConnection creates (or, for an existing ID, replaces) an Auth0
// connection.
func (s *Server) AddConnection(c ConnectionSpec) {
	if c.Name == "" || c.Strategy == "" {
		panic("auth0sim: AddConnection: Name and Strategy are required")
	}
	if c.ID == "" {
		c.ID = "con_" + strings.NewReplacer("-", "x", "_", "y").Replace(randomString(12))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var p *idp
	if c.IdP != "" {
		var ok bool
		if p, ok = s.idps[c.IdP]; !ok {
			panic(fmt.Sprintf("auth0sim: AddConnection %q: unknown IdP %q (call AddIdP first)", c.Name, c.IdP))
		}
	} else if c.AdminTokens {
		panic(fmt.Sprintf("auth0sim: AddConnection %q: AdminTokens requires IdP", c.Name))
	}
	validateOIDC(c)
	for id, other := range s.conns {
		if id != c.ID && other.spec.Name == c.Name {
			panic(fmt.Sprintf("auth0sim: AddConnection: name %q already used by %q", c.Name, id))
		}
	}
	conn := &connection{spec: c}
	if c.AdminTokens {
		now := s.clk.Now()
		conn.adminAT = s.mintAccessLocked(p, c.Name, now)
		conn.adminRT = s.mintRefreshLocked(&refreshToken{idp: p.opts.Name, connID: c.ID, subject: c.Name})
		conn.adminExpires = now.Add(p.opts.AccessTokenLifetime)
	}
	typ := EventConnectionCreated
	if _, ok := s.conns[c.ID]; ok {
		typ = EventConnectionUpdated
	}
	s.conns[c.ID] = conn
	s.publishConnectionLocked(typ, conn, s.clk.Now())
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.UserReads = maps.Clone(s.stats.UserReads)
	st.IdPRefreshes = maps.Clone(s.stats.IdPRefreshes)
	return st
}

// CurrentAccessToken returns Auth0's current copy of the access token of the
// user's identity on the named connection, or "" if there is none.
func (s *Server) CurrentAccessToken(userID, connection string) string {
	if id := s.identity(userID, connection); id != nil {
		return id.accessToken
	}
	return ""
}

// CurrentRefreshToken returns Auth0's current copy of the refresh token of
// the user's identity on the named connection, or "" if there is none.
func (s *Server) CurrentRefreshToken(userID, connection string) string {
	if id := s.identity(userID, connection); id != nil {
		return id.refreshToken
	}
	return ""
}

// identity returns a copy of the identity, or nil.
func (s *Server) identity(userID, connection string) *identity {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[userID]
	if !ok {
		return nil
	}
	for _, id := range u.identities {
		if id.spec.Connection == connection {
			c := *id
			return &c
		}
	}
	return nil
}

// ConnectionAdminTokens returns the admin access and refresh tokens stored
// in the connection's options, or empty strings.
func (s *Server) ConnectionAdminTokens(connectionID string) (accessToken, refreshToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.conns[connectionID]; ok {
		return c.adminAT, c.adminRT
	}
	return "", ""
}

// AccessTokenValid reports whether token is an access token issued by one of
// the IdPs (to Auth0 or through a refresh) that has not expired at
// Clock.Now(), and when it expires. A token is valid while Now is before
// its expiry time. expiresAt is set for every known token, expired or not,
// and zero for tokens the IdPs never issued.
func (s *Server) AccessTokenValid(token string) (expiresAt time.Time, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	at, found := s.accessTokens[token]
	if !found {
		return time.Time{}, false
	}
	return at.expiresAt, s.clk.Now().Before(at.expiresAt)
}

// RefreshTokenLive reports whether token is a refresh token an IdP issued
// that would be accepted now: neither spent (strict rotation) nor revoked.
func (s *Server) RefreshTokenLive(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	return ok && !rt.spent && !rt.revoked
}

// LiveRefreshTokens returns how many refresh tokens of the named IdP would be
// accepted now. With strict rotation, a user whose lineage has not forked
// (and who has not logged in again) has exactly one.
func (s *Server) LiveRefreshTokens(idpName string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, rt := range s.refreshTokens {
		if rt.idp == idpName && !rt.spent && !rt.revoked {
			n++
		}
	}
	return n
}

// RefreshTokenSpent reports whether token is a refresh token of a strict IdP
// that has already been used once.
func (s *Server) RefreshTokenSpent(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	rt, ok := s.refreshTokens[token]
	return ok && rt.spent
}
