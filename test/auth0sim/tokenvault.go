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
	"crypto/rsa"
	"crypto/subtle"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// Token Vault protocol values (Privileged Worker token exchange).
const (
	TokenVaultGrantType = "urn:auth0:params:oauth:grant-type:token-exchange:federated-connection-access-token"
	// TokenVaultSubjectTokenType is the only subject_token_type served: a
	// JWT signed by the worker's key.
	TokenVaultSubjectTokenType = "urn:ietf:params:oauth:token-type:jwt"
	// TokenVaultAccessTokenType is the requested_token_type of the
	// Privileged Worker docs; TokenVaultFederatedAccessTokenType is the one
	// of the Authentication API reference. Both are accepted and echoed as
	// issued_token_type.
	TokenVaultAccessTokenType          = "http://auth0.com/oauth/token-type/token-vault-access-token"
	TokenVaultFederatedAccessTokenType = "http://auth0.com/oauth/token-type/federated-connection-access-token"
	// TokenVaultSubjectJWTType is the typ header a subject token must carry.
	TokenVaultSubjectJWTType = "token-vault-req+jwt"
	// ClientAssertionType is RFC 7523's client_assertion_type.
	ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// Limits Auth0 documents and the simulator enforces.
const (
	// MaxSubjectTokenLifetime is the longest exp - iat of a subject token.
	MaxSubjectTokenLifetime = 60 * time.Second
	// MaxClientAssertionLifetime is Auth0's limit for private_key_jwt.
	MaxClientAssertionLifetime = 5 * time.Minute
	// JWTClockSkew is the skew allowed for iat and nbf.
	JWTClockSkew = 10 * time.Second
	// maxAssertionBytes and maxJTI are Auth0's assertion limits.
	maxAssertionBytes = 2048
	maxJTI            = 64
)

type tokenVaultClient struct {
	key    *rsa.PublicKey
	secret string
	// allow is the client's IP allow-list; empty allows every address.
	allow []netip.Prefix
}

// SubjectRecord is one accepted subject token, for tests.
type SubjectRecord struct {
	JTI, ClientID, UserID, Connection, AuditContext string
	IssuedAt                                        time.Time
	Lifetime                                        time.Duration
}

type tokenVaultState struct {
	clients       map[string]*tokenVaultClient
	subjectJTIs   map[string]bool
	assertionJTIs map[string]bool
	subjects      []SubjectRecord
	rlWindow      int64
	rlCount       int
	// badClientAccessDenied: see Options.TokenVaultBadClientAccessDenied.
	badClientAccessDenied bool
}

func newTokenVaultState(badClientAccessDenied bool) tokenVaultState {
	return tokenVaultState{
		clients:               map[string]*tokenVaultClient{},
		subjectJTIs:           map[string]bool{},
		assertionJTIs:         map[string]bool{},
		badClientAccessDenied: badClientAccessDenied,
	}
}

// SetTokenVaultBadClientAccessDenied switches Options.TokenVaultBadClientAccessDenied from
// now on: on, a Token Vault client that fails authentication gets 401 access_denied
// "Unauthorized" (Auth0's answer); off, 401 invalid_client with a description.
func (s *Server) SetTokenVaultBadClientAccessDenied(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tv.badClientAccessDenied = on
}

// AddTokenVaultClient registers a Privileged Worker client allowed to use the
// Token Vault exchange. publicKeyPEM ("PUBLIC KEY" or "RSA PUBLIC KEY") is
// the key its subject tokens and client assertions are verified with; a
// non-empty clientSecret also lets it authenticate with client_secret instead
// of a client assertion. Registering an existing client ID replaces it.
func (s *Server) AddTokenVaultClient(clientID string, publicKeyPEM []byte, clientSecret string) {
	if clientID == "" {
		panic("auth0sim: AddTokenVaultClient: empty client ID")
	}
	key, err := parseRSAPublicKey(publicKeyPEM)
	if err != nil {
		panic(fmt.Sprintf("auth0sim: AddTokenVaultClient %q: %v", clientID, err))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tv.clients[clientID] = &tokenVaultClient{key: key, secret: clientSecret}
}

func parseRSAPublicKey(pemBytes []byte) (*rsa.PublicKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, fmt.Errorf("public key is not PEM")
	}
	switch block.Type {
	case "PUBLIC KEY":
		k, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parse public key: %w", err)
		}
		rk, ok := k.(*rsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("public key is a %T, not RSA", k)
		}
		return rk, nil
	case "RSA PUBLIC KEY":
		return x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		return nil, fmt.Errorf("unexpected PEM type %q", block.Type)
	}
}

// SetTokenVaultIPAllowlist sets the IP allow-list of a Token Vault client
// (addresses or CIDR ranges); exchanges from other addresses get 403
// access_denied, as Auth0 answers them. No argument clears it. It panics for
// an unknown client or an invalid entry.
func (s *Server) SetTokenVaultIPAllowlist(clientID string, entries ...string) {
	var allow []netip.Prefix
	for _, e := range entries {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			a, aerr := netip.ParseAddr(e)
			if aerr != nil {
				panic(fmt.Sprintf("auth0sim: SetTokenVaultIPAllowlist %q: invalid entry %q", clientID, e))
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		allow = append(allow, p)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.tv.clients[clientID]
	if !ok {
		panic(fmt.Sprintf("auth0sim: SetTokenVaultIPAllowlist: unknown client %q", clientID))
	}
	c.allow = allow
}

// allowedFrom reports whether remoteAddr (host:port) is on c's allow-list.
func (c *tokenVaultClient) allowedFrom(remoteAddr string) bool {
	if len(c.allow) == 0 {
		return true
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range c.allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// VaultedToken returns the access token Token Vault holds for the user's
// identity on the connection and when it expires; "" if there is none.
func (s *Server) VaultedToken(userID, connection string) (accessToken string, expiresAt time.Time) {
	if id := s.identity(userID, connection); id != nil {
		return id.accessToken, id.expiresAt
	}
	return "", time.Time{}
}

// TokenVaultSubjects returns every subject token accepted so far, in order.
func (s *Server) TokenVaultSubjects() []SubjectRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SubjectRecord(nil), s.tv.subjects...)
}

// tokenVaultConnectionLocked reports whether the connection with that name
// has Token Vault enabled.
func (s *Server) tokenVaultConnectionLocked(name string) bool {
	for _, c := range s.conns {
		if c.spec.Name == name {
			return c.spec.TokenVault
		}
	}
	return false
}

// tokenVaultResponse is the exchange's success body.
type tokenVaultResponse struct {
	AccessToken     string `json:"access_token"`
	ExpiresIn       *int64 `json:"expires_in,omitempty"`
	Scope           string `json:"scope"`
	IssuedTokenType string `json:"issued_token_type"`
	TokenType       string `json:"token_type"`
}

// handleTokenVaultExchange serves the Privileged Worker token exchange:
// client authentication, subject token verification, then the vaulted token.
func (s *Server) handleTokenVaultExchange(w http.ResponseWriter, r *http.Request, params map[string]string) {
	now := s.clk.Now()
	if wait, ok := s.takeTokenVaultRate(now); !ok {
		w.Header().Set("Retry-After", strconv.FormatInt(retryAfterSeconds(wait), 10))
		writeJSON(w, http.StatusTooManyRequests, oauthError{Error: "too_many_requests", ErrorDescription: "Global limit has been reached"})
		return
	}
	status, body := s.exchange(r, params, now)
	writeJSON(w, status, body)
}

// takeTokenVaultRate accounts one exchange in the one-second window of now.
func (s *Server) takeTokenVaultRate(now time.Time) (time.Duration, bool) {
	limit := s.opts.TokenVaultRateLimitPerSecond
	if limit == 0 {
		return 0, true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if window := now.Unix(); window != s.tv.rlWindow {
		s.tv.rlWindow, s.tv.rlCount = window, 0
	}
	if s.tv.rlCount >= limit {
		return time.Unix(s.tv.rlWindow+1, 0).Sub(now), false
	}
	s.tv.rlCount++
	return 0, true
}

func (s *Server) exchange(r *http.Request, params map[string]string, now time.Time) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()

	clientID, status, body := s.authenticateTokenVaultClientLocked(r, params, now)
	if status != 0 {
		if e, ok := body.(oauthError); ok && e.Error == "invalid_client" && s.tv.badClientAccessDenied {
			body = oauthError{Error: "access_denied", ErrorDescription: "Unauthorized"}
		}
		return status, body
	}
	if !s.tv.clients[clientID].allowedFrom(r.RemoteAddr) {
		return http.StatusForbidden, oauthError{Error: "access_denied", ErrorDescription: "The request IP address is not in the client's IP allow-list"}
	}
	requested := params["requested_token_type"]
	switch {
	case params["subject_token_type"] != TokenVaultSubjectTokenType:
		return http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "subject_token_type must be " + TokenVaultSubjectTokenType}
	case requested != TokenVaultAccessTokenType && requested != TokenVaultFederatedAccessTokenType:
		return http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "Unsupported requested_token_type: " + sanitize(requested)}
	case params["connection"] == "":
		return http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "Missing required parameter: connection"}
	case params["subject_token"] == "":
		return http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "Missing required parameter: subject_token"}
	}
	connection := params["connection"]

	userID, problem := s.verifySubjectTokenLocked(params["subject_token"], clientID, connection, now)
	if problem != "" {
		s.stats.TokenVaultInvalidSubjectTokens++
		return http.StatusUnauthorized, oauthError{Error: "invalid_grant", ErrorDescription: "Invalid subject_token: " + problem}
	}
	s.stats.TokenVaultValidSubjectTokens++

	u, ok := s.users[userID]
	if !ok {
		return http.StatusUnauthorized, oauthError{Error: "access_denied", ErrorDescription: "The user does not exist."}
	}
	var id *identity
	for _, cand := range u.identities {
		if cand.spec.Connection == connection && cand.spec.IdP != "" {
			id = cand
			break
		}
	}
	if id == nil || !s.tokenVaultConnectionLocked(connection) {
		return http.StatusUnauthorized, oauthError{Error: "access_denied", ErrorDescription: "No federated connection access token found for the user on connection " + sanitize(connection)}
	}
	if !now.Before(id.expiresAt.Add(-s.opts.TokenVaultRefreshWindow)) {
		if !s.vaultRefreshLocked(id, now) && !now.Before(id.expiresAt) {
			return http.StatusUnauthorized, oauthError{Error: "access_denied", ErrorDescription: "The stored token for connection " + sanitize(connection) + " has expired and cannot be refreshed; the user must connect the account again"}
		}
	}

	s.stats.TokenVaultExchanges++
	resp := tokenVaultResponse{AccessToken: id.accessToken, Scope: idpScope, IssuedTokenType: requested, TokenType: "Bearer"}
	if p := s.idps[id.spec.IdP]; p == nil || !p.opts.OmitExpiresIn {
		// Remaining lifetime, rounded up so a valid token never says 0.
		remaining := int64((id.expiresAt.Sub(now) + time.Second - 1) / time.Second)
		resp.ExpiresIn = &remaining
	}
	return http.StatusOK, resp
}

// vaultRefreshLocked refreshes the identity's token at its IdP with the
// vaulted refresh token, as Auth0 does; false when there is none that works.
func (s *Server) vaultRefreshLocked(id *identity, now time.Time) bool {
	p := s.idps[id.spec.IdP]
	rec, ok := s.refreshTokens[id.refreshToken]
	if p == nil || !ok || rec.revoked || rec.spent {
		return false
	}
	id.accessToken = s.mintAccessLocked(p, id.spec.UserID, now)
	id.expiresAt = now.Add(p.opts.AccessTokenLifetime)
	switch p.opts.Rotation {
	case RotationRotate:
		id.refreshToken = s.mintRefreshLocked(rec)
	case RotationStrict:
		rec.spent = true
		id.refreshToken = s.mintRefreshLocked(rec)
	}
	s.stats.IdPRefreshes[p.opts.Name]++
	s.stats.TokenVaultRefreshes++
	return true
}

// authenticateTokenVaultClientLocked authenticates the client by
// private_key_jwt or client_secret. It returns the client ID, or a non-zero
// status and error body.
func (s *Server) authenticateTokenVaultClientLocked(r *http.Request, params map[string]string, now time.Time) (string, int, any) {
	invalidClient := func(desc string) (string, int, any) {
		return "", http.StatusUnauthorized, oauthError{Error: "invalid_client", ErrorDescription: desc}
	}
	clientID, secret := params["client_id"], params["client_secret"]
	basicID, basicSecret, basic := basicAuth(r)
	if basic {
		if secret != "" || (clientID != "" && clientID != basicID) {
			return "", http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "Multiple client authentication methods or client IDs"}
		}
		clientID, secret = basicID, basicSecret
	}
	assertion := params["client_assertion"]
	if assertion != "" && (secret != "" || basic) {
		return "", http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "Multiple client authentication methods"}
	}
	if assertion == "" && secret == "" {
		return invalidClient("Client authentication is required")
	}

	if assertion != "" {
		if params["client_assertion_type"] != ClientAssertionType {
			return "", http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "client_assertion_type must be " + ClientAssertionType}
		}
		if len(assertion) > maxAssertionBytes {
			return invalidClient("The client assertion exceeds 2048 bytes")
		}
		tok, err := jwt.ParseSigned(assertion, []jose.SignatureAlgorithm{jose.RS256})
		if err != nil {
			return invalidClient("The client assertion is not a valid RS256 JWT")
		}
		var unverified jwt.Claims
		if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
			return invalidClient("The client assertion's claims are not valid")
		}
		if clientID == "" {
			clientID = unverified.Issuer
		}
		c, ok := s.tv.clients[clientID]
		if !ok {
			status, body := s.unknownTokenVaultClient(clientID)
			return "", status, body
		}
		var claims jwt.Claims
		if err := tok.Claims(c.key, &claims); err != nil {
			return invalidClient("The client assertion's signature does not verify with the registered key")
		}
		if problem := checkTimes(claims, now, MaxClientAssertionLifetime, false); problem != "" {
			return invalidClient("Client assertion " + problem)
		}
		switch {
		case claims.Issuer != clientID || claims.Subject != clientID:
			return invalidClient("The client assertion's iss and sub must be the client ID")
		case !claims.Audience.Contains(s.tenantURL()):
			return invalidClient("The client assertion's aud must be " + s.tenantURL())
		case claims.ID == "" || len(claims.ID) > maxJTI:
			return invalidClient("The client assertion needs a jti of at most 64 characters")
		case s.tv.assertionJTIs[claims.ID]:
			s.stats.TokenVaultReplays++
			return invalidClient("The client assertion's jti has already been used")
		}
		s.tv.assertionJTIs[claims.ID] = true
		return clientID, 0, nil
	}

	c, ok := s.tv.clients[clientID]
	if !ok {
		status, body := s.unknownTokenVaultClient(clientID)
		return "", status, body
	}
	if c.secret == "" || subtle.ConstantTimeCompare([]byte(c.secret), []byte(secret)) != 1 {
		return invalidClient("Invalid client credentials")
	}
	return clientID, 0, nil
}

// unknownTokenVaultClient answers for a client that is not a Token Vault
// client: 403 for an application that exists without the grant, as Auth0
// does, 401 otherwise.
func (s *Server) unknownTokenVaultClient(clientID string) (int, any) {
	if _, ok := s.clients[clientID]; ok {
		return http.StatusForbidden, oauthError{Error: "unauthorized_client", ErrorDescription: "Grant type '" + TokenVaultGrantType + "' not allowed for the client."}
	}
	return http.StatusUnauthorized, oauthError{Error: "invalid_client", ErrorDescription: "Unknown client"}
}

func (s *Server) tenantURL() string { return "https://" + s.domain + "/" }

// verifySubjectTokenLocked checks the subject token of an authenticated
// client and returns its subject, or why it was refused.
func (s *Server) verifySubjectTokenLocked(raw, clientID, connection string, now time.Time) (userID, problem string) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return "", "not an RS256 JWT"
	}
	if len(tok.Headers) != 1 || tok.Headers[0].ExtraHeaders[jose.HeaderType] != TokenVaultSubjectJWTType {
		return "", "the typ header must be " + TokenVaultSubjectJWTType
	}
	var claims jwt.Claims
	var extra struct {
		AuditContext any `json:"audit_context"`
	}
	if err := tok.Claims(s.tv.clients[clientID].key, &claims, &extra); err != nil {
		return "", "the signature does not verify with the client's registered key"
	}
	if problem := checkTimes(claims, now, MaxSubjectTokenLifetime, true); problem != "" {
		return "", problem
	}
	audit, isString := extra.AuditContext.(string)
	switch {
	case claims.Issuer != clientID:
		return "", "iss must be the client ID"
	case !claims.Audience.Contains(s.tenantURL()):
		return "", "aud must be " + s.tenantURL()
	case claims.Subject == "":
		return "", "sub (the user ID) is missing"
	case claims.ID == "" || len(claims.ID) > maxJTI:
		return "", "a jti of at most 64 characters is required"
	case extra.AuditContext != nil && !isString:
		return "", "audit_context must be a string"
	case s.tv.subjectJTIs[claims.ID]:
		s.stats.TokenVaultReplays++
		return "", "the jti has already been used"
	}
	s.tv.subjectJTIs[claims.ID] = true
	s.tv.subjects = append(s.tv.subjects, SubjectRecord{
		JTI: claims.ID, ClientID: clientID, UserID: claims.Subject, Connection: connection,
		AuditContext: audit, IssuedAt: claims.IssuedAt.Time(),
		Lifetime: claims.Expiry.Time().Sub(claims.IssuedAt.Time()),
	})
	return claims.Subject, ""
}

// checkTimes validates exp, iat and nbf at now: exp required and in the
// future; iat (required when requireIAT) and nbf not more than JWTClockSkew
// ahead; exp - iat within (0, maxLifetime].
func checkTimes(c jwt.Claims, now time.Time, maxLifetime time.Duration, requireIAT bool) string {
	if c.Expiry == nil {
		return "exp is required"
	}
	exp := c.Expiry.Time()
	if !now.Before(exp) {
		return "has expired"
	}
	start := now
	if c.IssuedAt != nil {
		start = c.IssuedAt.Time()
		if start.After(now.Add(JWTClockSkew)) {
			return "iat is in the future"
		}
	} else if requireIAT {
		return "iat is required"
	}
	if c.NotBefore != nil && c.NotBefore.Time().After(now.Add(JWTClockSkew)) {
		return "is not valid yet (nbf)"
	}
	if life := exp.Sub(start); life <= 0 || life > maxLifetime {
		return fmt.Sprintf("lifetime (exp - iat) must be at most %s", maxLifetime)
	}
	return ""
}
