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
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Management API scopes the simulator checks.
const (
	ScopeReadUsers             = "read:users"
	ScopeReadUserIdPTokens     = "read:user_idp_tokens"
	ScopeReadConnections       = "read:connections"
	ScopeReadConnectionOptions = "read:connections_options"
)

// auth0Time is the timestamp format of the Management API.
const auth0Time = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(auth0Time) }

// handleAPI serves /api/v2/*: rate limit, authentication, routing.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	now := s.clk.Now()
	limit, remaining, reset, allowed := s.takeRateLimit(now)
	setRateLimitHeaders(w, limit, remaining, reset)
	if !allowed {
		w.Header().Set("Retry-After", strconv.FormatInt(s.retryAfterToken(), 10))
		writeAPIError(w, http.StatusTooManyRequests, "Global limit has been reached", "too_many_requests")
		return
	}
	scopes, ok := s.authenticate(w, r, now)
	if !ok {
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeAPIError(w, http.StatusMethodNotAllowed, "Method not allowed", "")
		return
	}
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/api/v2")
	switch {
	case rest == "/events":
		s.serveEvents(w, r, scopes)
	case rest == "/connections" || rest == "/connections/":
		s.listConnections(w, r, scopes)
	case strings.HasPrefix(rest, "/connections/") && !strings.Contains(rest[len("/connections/"):], "/"):
		s.getConnection(w, scopes, rest[len("/connections/"):])
	case strings.HasPrefix(rest, "/users/") && len(rest) > len("/users/") && !strings.Contains(rest[len("/users/"):], "/"):
		s.getUser(w, r, scopes, rest[len("/users/"):])
	default:
		writeAPIError(w, http.StatusNotFound, "Not Found", "")
	}
}

func setRateLimitHeaders(w http.ResponseWriter, limit, remaining int, reset time.Time) {
	h := w.Header()
	h.Set("x-ratelimit-limit", strconv.Itoa(limit))
	h.Set("x-ratelimit-remaining", strconv.Itoa(remaining))
	h.Set("x-ratelimit-reset", strconv.FormatInt(reset.Unix(), 10))
}

// takeRateLimit takes one token of the Management API bucket, which refills
// at RateLimitPerSecond up to RateLimitBurst. It returns the header values
// (the limit is the bucket's size, remaining its whole tokens after this
// request, reset per RateLimitReset) and whether the request is allowed.
func (s *Server) takeRateLimit(now time.Time) (limit, remaining int, reset time.Time, allowed bool) {
	if s.opts.RateLimitPerSecond == 0 {
		return UnlimitedRateLimit, UnlimitedRateLimit - 1, ceilSecond(now), true
	}
	rate, size := float64(s.opts.RateLimitPerSecond), float64(s.opts.RateLimitBurst)
	s.mu.Lock()
	defer s.mu.Unlock()
	level := size
	if !s.rlLast.IsZero() {
		level = min(size, s.rlTokens+rate*max(0, now.Sub(s.rlLast).Seconds()))
	}
	allowed = level >= 1
	if allowed {
		level--
	}
	s.rlTokens, s.rlLast = level, now
	var wait float64 // seconds until the reset
	switch {
	case s.opts.RateLimitReset == ResetNextToken && level < size:
		wait = (math.Floor(level) + 1 - level) / rate
	case s.opts.RateLimitReset == ResetWhenFull:
		wait = (size - level) / rate
	}
	reset = ceilSecond(now.Add(time.Duration(wait * float64(time.Second))))
	return s.opts.RateLimitBurst, int(level), reset, allowed
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}

// retryAfterToken is the Retry-After of a 429: whole seconds until the bucket
// holds a token again, at least 1.
func (s *Server) retryAfterToken() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	need := (1 - s.rlTokens) / float64(s.opts.RateLimitPerSecond)
	return retryAfterSeconds(time.Duration(need * float64(time.Second)))
}

// authenticate checks the bearer token and returns its scopes. On failure it
// writes the 401 response.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, now time.Time) (map[string]bool, bool) {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		writeAPIError(w, http.StatusUnauthorized, "Missing authentication", "missing_authorization")
		return nil, false
	}
	scheme, tok, found := strings.Cut(auth, " ")
	tok = strings.TrimSpace(tok)
	if !found || !strings.EqualFold(scheme, "Bearer") || tok == "" {
		writeAPIError(w, http.StatusUnauthorized, "Bad HTTP authentication header format", "invalid_authorization_header")
		return nil, false
	}
	s.mu.Lock()
	t, known := s.m2mTokens[tok]
	var scopes map[string]bool
	expired := false
	if known {
		scopes = t.scopes
		expired = !now.Before(t.expiresAt)
	}
	s.mu.Unlock()
	switch {
	case !known:
		writeAPIError(w, http.StatusUnauthorized, "Invalid token.", "invalid_token")
		return nil, false
	case expired:
		writeAPIError(w, http.StatusUnauthorized, "Expired token received for JSON Web Token validation", "invalid_token")
		return nil, false
	}
	return scopes, true
}

func insufficientScope(w http.ResponseWriter, scope string) {
	writeAPIError(w, http.StatusForbidden, "Insufficient scope, expected any of: "+scope, "insufficient_scope")
}

// identityJSON is one element of a user's identities.
type identityJSON struct {
	Connection        string `json:"connection"`
	Provider          string `json:"provider"`
	UserID            any    `json:"user_id"`
	IsSocial          bool   `json:"isSocial"`
	AccessToken       string `json:"access_token,omitempty"`
	AccessTokenSecret string `json:"access_token_secret,omitempty"`
	RefreshToken      string `json:"refresh_token,omitempty"`
	ExpiresIn         *int64 `json:"expires_in,omitempty"`
}

// getUser serves GET /api/v2/users/{id}.
func (s *Server) getUser(w http.ResponseWriter, r *http.Request, scopes map[string]bool, escapedID string) {
	if !scopes[ScopeReadUsers] {
		insufficientScope(w, ScopeReadUsers)
		return
	}
	userID, err := url.PathUnescape(escapedID)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "Path validation error: 'String does not match pattern' on property id (ID of the user)", "invalid_uri")
		return
	}
	withTokens := scopes[ScopeReadUserIdPTokens]

	s.mu.Lock()
	s.stats.UserReads[userID]++
	var body map[string]any
	if u, ok := s.users[userID]; ok {
		body = s.renderUserLocked(u, withTokens)
	}
	s.mu.Unlock()

	if body == nil {
		writeAPIError(w, http.StatusNotFound, "The user does not exist.", "inexistent_user")
		return
	}
	q := r.URL.Query()
	if fields := q.Get("fields"); fields != "" {
		include := q.Get("include_fields") != "false"
		selected := map[string]bool{}
		for f := range strings.SplitSeq(fields, ",") {
			if f = strings.TrimSpace(f); f != "" {
				selected[f] = true
			}
		}
		for k := range body {
			if selected[k] != include {
				delete(body, k)
			}
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Server) renderUserLocked(u *user, withTokens bool) map[string]any {
	ids := make([]identityJSON, 0, len(u.identities))
	for _, id := range u.identities {
		j := identityJSON{
			Connection: id.spec.Connection,
			Provider:   id.spec.Provider,
			UserID:     id.spec.UserID,
			IsSocial:   id.spec.IsSocial,
		}
		if id.spec.NumericUserID {
			j.UserID = jsonNumber(id.spec.UserID)
		}
		if withTokens && id.spec.IdP != "" && !s.tokenVaultConnectionLocked(id.spec.Connection) {
			j.AccessToken = id.accessToken
			j.AccessTokenSecret = id.accessTokenSecret
			j.RefreshToken = id.refreshToken
			if p := s.idps[id.spec.IdP]; p != nil && !p.opts.OmitExpiresIn {
				exp := id.expiresIn
				j.ExpiresIn = &exp
			}
		}
		ids = append(ids, j)
	}
	return map[string]any{
		"user_id":      u.id,
		"created_at":   formatTime(u.createdAt),
		"updated_at":   formatTime(u.updatedAt),
		"last_login":   formatTime(u.lastLogin),
		"logins_count": u.logins,
		"identities":   ids,
	}
}

// jsonNumber renders a decimal string as a JSON number.
type jsonNumber string

func (n jsonNumber) MarshalJSON() ([]byte, error) { return []byte(n), nil }

// connectionJSON is a Management API connection.
type connectionJSON struct {
	ID                 string         `json:"id"`
	Name               string         `json:"name"`
	Strategy           string         `json:"strategy"`
	Options            map[string]any `json:"options"`
	IsDomainConnection bool           `json:"is_domain_connection"`
	Realms             []string       `json:"realms"`
	// ConnectedAccounts is the newer, top-level Token Vault switch
	// ("Connected Accounts for Token Vault").
	ConnectedAccounts *activeFlag `json:"connected_accounts,omitempty"`
}

type activeFlag struct {
	Active bool `json:"active"`
}

// getConnection serves GET /api/v2/connections/{id}.
func (s *Server) getConnection(w http.ResponseWriter, scopes map[string]bool, escapedID string) {
	if !scopes[ScopeReadConnections] {
		insufficientScope(w, ScopeReadConnections)
		return
	}
	id, err := url.PathUnescape(escapedID)
	if err != nil {
		writeAPIError(w, http.StatusBadRequest, "Path validation error: 'String does not match pattern' on property id (ID of the connection)", "invalid_uri")
		return
	}
	s.mu.Lock()
	s.stats.ConnectionReads++
	var body *connectionJSON
	if c, ok := s.conns[id]; ok {
		body = s.renderConnectionLocked(c, scopes[ScopeReadConnectionOptions])
	}
	s.mu.Unlock()
	if body == nil {
		writeAPIError(w, http.StatusNotFound, "The connection does not exist", "inexistent_connection")
		return
	}
	writeJSON(w, http.StatusOK, body)
}

// listConnections serves GET /api/v2/connections[?name=][&strategy=].
func (s *Server) listConnections(w http.ResponseWriter, r *http.Request, scopes map[string]bool) {
	if !scopes[ScopeReadConnections] {
		insufficientScope(w, ScopeReadConnections)
		return
	}
	q := r.URL.Query()
	name, nameSet := q.Get("name"), q.Has("name")
	strategies := q["strategy"]
	s.mu.Lock()
	s.stats.ConnectionReads++
	list := []*connectionJSON{}
	for _, c := range s.conns {
		if nameSet && c.spec.Name != name {
			continue
		}
		if len(strategies) > 0 && !slices.Contains(strategies, c.spec.Strategy) {
			continue
		}
		list = append(list, s.renderConnectionLocked(c, scopes[ScopeReadConnectionOptions]))
	}
	s.mu.Unlock()
	slices.SortFunc(list, func(a, b *connectionJSON) int { return strings.Compare(a.Name, b.Name) })
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) renderConnectionLocked(c *connection, withSecrets bool) *connectionJSON {
	opts := map[string]any{}
	if c.spec.IdP != "" {
		p := s.idps[c.spec.IdP]
		opts["client_id"] = p.opts.ClientID
		if withSecrets {
			opts["client_secret"] = p.opts.ClientSecret
		}
		if c.spec.Strategy == "oauth2" {
			opts["tokenURL"] = s.TokenURL(c.spec.IdP)
		}
	}
	renderOIDCOptions(opts, c.spec, s.url)
	if c.spec.TenantDomain != "" {
		opts["tenant_domain"] = c.spec.TenantDomain
	}
	if c.spec.TokenVault {
		opts["federated_connections_access_tokens"] = map[string]any{"active": true}
	}
	if c.spec.AdminTokens && withSecrets {
		opts["admin_access_token"] = c.adminAT
		opts["admin_refresh_token"] = c.adminRT
		opts["admin_access_token_expiresin"] = formatTime(c.adminExpires)
	}
	j := &connectionJSON{
		ID:       c.spec.ID,
		Name:     c.spec.Name,
		Strategy: c.spec.Strategy,
		Options:  opts,
		Realms:   []string{c.spec.Name},
	}
	if c.spec.TokenVault {
		j.ConnectedAccounts = &activeFlag{Active: true}
	}
	return j
}
