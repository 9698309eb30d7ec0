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
	"net/url"
	"strconv"
	"strings"
	"time"
)

// idpTokenResponse is an IdP's refresh-grant success body.
type idpTokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    *int64 `json:"expires_in,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	Scope        string `json:"scope"`
}

// handleIdP serves POST /idp/<name>/token.
func (s *Server) handleIdP(w http.ResponseWriter, r *http.Request) {
	rest := strings.TrimPrefix(r.URL.EscapedPath(), "/idp/")
	escName, tail, _ := strings.Cut(rest, "/")
	name, err := url.PathUnescape(escName)
	if err != nil || tail != "token" {
		writeJSON(w, http.StatusNotFound, oauthError{Error: "not_found"})
		return
	}
	s.serveRefreshGrant(w, r, name, "")
}

// serveRefreshGrant serves a refresh grant at the token endpoint of IdP name. authMethod, when
// set, is the only client authentication accepted (ClientSecretBasic or ClientSecretPost).
func (s *Server) serveRefreshGrant(w http.ResponseWriter, r *http.Request, name, authMethod string) {
	s.mu.Lock()
	p, ok := s.idps[name]
	var o IdPOptions
	if ok {
		o = p.opts
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, oauthError{Error: "not_found"})
		return
	}

	// GitHub answers form-encoded unless the client asks for JSON.
	form := strings.HasPrefix(name, "github") && !strings.Contains(strings.ToLower(r.Header.Get("Accept")), "json")
	reply := func(status int, body any) {
		noStore(w)
		if o.GitHubErrors {
			status, body = githubError(status, body)
		}
		if form {
			writeForm(w, status, body)
		} else {
			writeJSONAs(w, status, body, o.ContentType)
		}
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		reply(http.StatusMethodNotAllowed, oauthError{Error: "invalid_request", ErrorDescription: "method not allowed"})
		return
	}
	params, err := readParams(w, r)
	if err != nil {
		reply(http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: err.Error()})
		return
	}
	clientID, clientSecret := params["client_id"], params["client_secret"]
	id, secret, basic := basicAuth(r)
	if basic {
		if params["client_secret"] != "" {
			// RFC 6749 §2.3: only one authentication method per request.
			reply(http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "multiple client authentication methods"})
			return
		}
		if clientID != "" && clientID != id {
			reply(http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "client_id does not match the authenticated client"})
			return
		}
		clientID, clientSecret = id, secret
	}
	if desc := refuseAuthMethod(authMethod, basic); desc != "" {
		if authMethod == ClientSecretBasic {
			w.Header().Set("WWW-Authenticate", `Basic realm="auth0sim"`)
		}
		reply(http.StatusUnauthorized, oauthError{Error: "invalid_client", ErrorDescription: desc})
		return
	}
	if clientID != o.ClientID || subtle.ConstantTimeCompare([]byte(clientSecret), []byte(o.ClientSecret)) != 1 {
		if basic {
			w.Header().Set("WWW-Authenticate", `Basic realm="auth0sim"`)
		}
		reply(http.StatusUnauthorized, oauthError{Error: "invalid_client"})
		return
	}
	switch grant := params["grant_type"]; grant {
	case "refresh_token":
	case "":
		reply(http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "missing grant_type"})
		return
	default:
		reply(http.StatusBadRequest, oauthError{Error: "unsupported_grant_type"})
		return
	}
	rt := params["refresh_token"]
	if rt == "" {
		reply(http.StatusBadRequest, oauthError{Error: "invalid_request", ErrorDescription: "missing refresh_token"})
		return
	}
	s.observe(o, IdPRefreshArrived)
	if o.ReplyDelay > 0 {
		if status, body, refused := s.checkRefresh(name, rt); refused {
			reply(status, body)
			return
		}
		if !s.holdReply(r, o.ReplyDelay) {
			s.mu.Lock()
			s.stats.IdPRefreshesAbandoned++
			s.mu.Unlock()
			s.observe(o, IdPRefreshAbandoned)
			// Nobody is listening: abort instead of answering.
			panic(http.ErrAbortHandler)
		}
	}
	status, body := s.refresh(name, rt)
	if status == http.StatusOK {
		s.observe(o, IdPRefreshCommitted)
	}
	reply(status, body)
}

// observe tells o.Observe about a step of a refresh grant.
func (s *Server) observe(o IdPOptions, kind IdPEventKind) {
	if o.Observe != nil {
		o.Observe(IdPEvent{IdP: o.Name, Kind: kind, At: s.clk.Now()})
	}
}

// holdReply waits d on the server's clock and reports whether the client is
// still there to receive the reply: false when its connection closed (which
// cancels the request's context) or the server is closing.
func (s *Server) holdReply(r *http.Request, d time.Duration) bool {
	t := s.clk.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
		return r.Context().Err() == nil
	case <-r.Context().Done():
		return false
	case <-s.done:
		return false
	}
}

// checkRefresh refuses a refresh token the IdP would not accept now,
// counting the invalid_grant, without committing anything.
func (s *Server) checkRefresh(name, token string) (status int, body any, refused bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if status, body, refused = s.refuseLocked(name, token); refused {
		s.stats.InvalidGrants++
	}
	return status, body, refused
}

// refuseLocked returns the invalid_grant answer for a refresh token the IdP
// does not accept now. Error descriptions never contain the token.
func (s *Server) refuseLocked(name, token string) (int, any, bool) {
	rec, ok := s.refreshTokens[token]
	var desc string
	switch {
	case !ok || rec.idp != name:
		desc = "The refresh token is invalid."
	case rec.revoked:
		desc = "The refresh token has been revoked."
	case rec.spent:
		desc = "The refresh token has already been used."
	}
	if desc == "" {
		return 0, nil, false
	}
	return http.StatusBadRequest, oauthError{Error: "invalid_grant", ErrorDescription: desc}, true
}

// refresh performs a refresh grant at IdP name and returns the response
// status and body. Error descriptions never contain the token.
func (s *Server) refresh(name, token string) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.idps[name]
	if status, body, refused := s.refuseLocked(name, token); refused {
		s.stats.InvalidGrants++
		return status, body
	}
	rec := s.refreshTokens[token]

	now := s.clk.Now()
	resp := idpTokenResponse{
		AccessToken: s.mintAccessLocked(p, rec.subject, now),
		TokenType:   "Bearer",
		Scope:       idpScope,
	}
	if !p.opts.OmitExpiresIn {
		exp := int64(p.opts.AccessTokenLifetime / time.Second)
		resp.ExpiresIn = &exp
	}
	switch p.opts.Rotation {
	case RotationRotate:
		resp.RefreshToken = s.mintRefreshLocked(rec)
	case RotationStrict:
		rec.spent = true
		resp.RefreshToken = s.mintRefreshLocked(rec)
	}
	s.stats.IdPRefreshes[name]++
	return http.StatusOK, resp
}

// writeForm writes a token endpoint body form-encoded, as GitHub does for
// clients that do not ask for JSON.
func writeForm(w http.ResponseWriter, status int, body any) {
	v := url.Values{}
	switch b := body.(type) {
	case idpTokenResponse:
		v.Set("access_token", b.AccessToken)
		v.Set("token_type", "bearer")
		v.Set("scope", b.Scope)
		if b.ExpiresIn != nil {
			v.Set("expires_in", strconv.FormatInt(*b.ExpiresIn, 10))
		}
		if b.RefreshToken != "" {
			v.Set("refresh_token", b.RefreshToken)
		}
	case oauthError:
		v.Set("error", b.Error)
		if b.ErrorDescription != "" {
			v.Set("error_description", b.ErrorDescription)
		}
		if b.ErrorURI != "" {
			v.Set("error_uri", b.ErrorURI)
		}
	default:
		writeJSON(w, status, body)
		return
	}
	enc := v.Encode()
	w.Header().Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(enc)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(enc))
}
