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
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"
	"time"
)

// m2mTokenResponse is the client-credentials success body.
type m2mTokenResponse struct {
	AccessToken string `json:"access_token"`
	Scope       string `json:"scope"`
	ExpiresIn   int64  `json:"expires_in"`
	TokenType   string `json:"token_type"`
}

// handleOAuthToken serves POST /oauth/token (client credentials only).
func (s *Server) handleOAuthToken(w http.ResponseWriter, r *http.Request) {
	noStore(w)
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", ErrorDescription: "Method not allowed"})
		return
	}
	params, err := readParams(w, r)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: err.Error()})
		return
	}
	clientID, clientSecret := params["client_id"], params["client_secret"]
	if id, secret, ok := basicAuth(r); ok {
		clientID, clientSecret = id, secret
	}
	switch grant := params["grant_type"]; grant {
	case "client_credentials":
	case TokenVaultGrantType:
		s.handleTokenVaultExchange(w, r, params)
		return
	case "":
		writeJSON(w, http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "Missing required parameter: grant_type"})
		return
	default:
		writeJSON(w, http.StatusForbidden, oauthError{Error: "unauthorized_client", ErrorDescription: "Grant type '" + sanitize(grant) + "' not allowed for the client."})
		return
	}

	now := s.clk.Now()
	status, body, quota := s.issueM2MToken(clientID, clientSecret, params["audience"], params["scope"], now)
	if b, spent := exhausted(quota); spent && status == http.StatusTooManyRequests {
		writeQuotaExceeded(w, quota, b, now)
		return
	}
	if status == http.StatusOK {
		setQuotaHeader(w.Header(), quota, now)
	}
	writeJSON(w, status, body)
}

// issueM2MToken validates a client-credentials request and mints a token.
// It returns the response status and body, and the client's quota buckets
// after the request (nil without a quota); a spent quota is a 429.
func (s *Server) issueM2MToken(clientID, clientSecret, audience, scope string, now time.Time) (int, any, []quotaBucket) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[clientID]
	if !ok || subtle.ConstantTimeCompare([]byte(c.secret), []byte(clientSecret)) != 1 {
		return http.StatusUnauthorized, oauthError{Error: "access_denied", ErrorDescription: "Unauthorized"}, nil
	}
	quota := s.quotaBucketsLocked(clientID, now)
	if _, spent := exhausted(quota); spent {
		return http.StatusTooManyRequests, nil, quota
	}
	status, body := s.mintM2MLocked(c, clientID, audience, scope, now)
	if status == http.StatusOK && quota != nil {
		u := s.quotaUseLocked(clientID, now)
		u.inHour++
		u.inToday++
		spend(quota)
	}
	return status, body, quota
}

// mintM2MLocked checks the audience and scopes of an authenticated client and mints a token.
func (s *Server) mintM2MLocked(c *m2mClient, clientID, audience, scope string, now time.Time) (int, any) {
	switch {
	case audience == "":
		return http.StatusForbidden, oauthError{Error: "access_denied", ErrorDescription: "No audience parameter was provided, and no default audience has been configured"}
	case audience != s.Audience():
		return http.StatusForbidden, oauthError{Error: "access_denied", ErrorDescription: "Service not enabled within domain: " + sanitize(audience)}
	case len(c.scopes) == 0:
		return http.StatusForbidden, oauthError{Error: "access_denied", ErrorDescription: `Client is not authorized to access "` + s.Audience() + `". You need to create a "client-grant" associated to this API.`}
	}
	scopes := c.scopes
	if requested := strings.Fields(scope); len(requested) > 0 {
		var missing []string
		for _, sc := range requested {
			if !slices.Contains(c.scopes, sc) {
				missing = append(missing, sanitize(sc))
			}
		}
		if len(missing) > 0 {
			return http.StatusForbidden, oauthError{Error: "access_denied", ErrorDescription: "Client has not been granted scopes: " + strings.Join(missing, ", ")}
		}
		scopes = requested
	}

	tok := opaqueToken(PrefixM2MToken)
	granted := make(map[string]bool, len(scopes))
	for _, sc := range scopes {
		granted[sc] = true
	}
	s.m2mTokens[tok] = &m2mToken{clientID: clientID, scopes: granted, expiresAt: now.Add(s.opts.M2MTokenLifetime)}
	s.stats.M2MTokensIssued++
	return http.StatusOK, m2mTokenResponse{
		AccessToken: tok,
		Scope:       strings.Join(scopes, " "),
		ExpiresIn:   int64(s.opts.M2MTokenLifetime / time.Second),
		TokenType:   "Bearer",
	}
}

// sanitize shortens and masks a client-supplied value before it is echoed in
// an error description, so that a token pasted into the wrong field is never
// reflected back.
func sanitize(v string) string {
	if TokenPattern.MatchString(v) {
		return "[redacted]"
	}
	const maxLen = 200
	if len(v) > maxLen {
		v = v[:maxLen] + "..."
	}
	return v
}
