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

package auth0sim_test

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

func TestClientCredentials(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddM2MClient("op", "op-secret", "read:users", "read:user_idp_tokens")
	s.AddM2MClient("nogrant", "ng-secret")

	form := func(kv ...string) url.Values {
		v := url.Values{"grant_type": {"client_credentials"}, "client_id": {"op"}, "client_secret": {"op-secret"}, "audience": {s.Audience()}}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				v.Del(kv[i])
			} else {
				v.Set(kv[i], kv[i+1])
			}
		}
		return v
	}
	tests := []struct {
		name       string
		req        func() *http.Request
		wantStatus int
		wantBody   string // exact JSON; empty for success checks
		wantScope  string
	}{
		{
			name:       "form success",
			req:        func() *http.Request { return formReq(t, s, form()) },
			wantStatus: http.StatusOK,
			wantScope:  "read:users read:user_idp_tokens",
		},
		{
			name: "JSON body success",
			req: func() *http.Request {
				body := `{"grant_type":"client_credentials","client_id":"op","client_secret":"op-secret","audience":"` + s.Audience() + `"}`
				r := newRequest(t, http.MethodPost, s.URL()+"/oauth/token", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				return r
			},
			wantStatus: http.StatusOK,
			wantScope:  "read:users read:user_idp_tokens",
		},
		{
			name: "HTTP Basic success",
			req: func() *http.Request {
				r := formReq(t, s, form("client_id", "", "client_secret", ""))
				r.SetBasicAuth("op", "op-secret")
				return r
			},
			wantStatus: http.StatusOK,
			wantScope:  "read:users read:user_idp_tokens",
		},
		{
			name:       "requested subset of scopes",
			req:        func() *http.Request { return formReq(t, s, form("scope", "read:users")) },
			wantStatus: http.StatusOK,
			wantScope:  "read:users",
		},
		{
			name:       "wrong secret",
			req:        func() *http.Request { return formReq(t, s, form("client_secret", "nope")) },
			wantStatus: http.StatusUnauthorized,
			wantBody:   `{"error":"access_denied","error_description":"Unauthorized"}`,
		},
		{
			name:       "unknown client",
			req:        func() *http.Request { return formReq(t, s, form("client_id", "who")) },
			wantStatus: http.StatusUnauthorized,
			wantBody:   `{"error":"access_denied","error_description":"Unauthorized"}`,
		},
		{
			name:       "wrong audience",
			req:        func() *http.Request { return formReq(t, s, form("audience", "https://example.com/api/v2/")) },
			wantStatus: http.StatusForbidden,
			wantBody:   `{"error":"access_denied","error_description":"Service not enabled within domain: https://example.com/api/v2/"}`,
		},
		{
			name:       "audience without trailing slash",
			req:        func() *http.Request { return formReq(t, s, form("audience", strings.TrimSuffix(s.Audience(), "/"))) },
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "missing audience",
			req:        func() *http.Request { return formReq(t, s, form("audience", "")) },
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "scope not granted",
			req:        func() *http.Request { return formReq(t, s, form("scope", "read:users delete:users")) },
			wantStatus: http.StatusForbidden,
			wantBody:   `{"error":"access_denied","error_description":"Client has not been granted scopes: delete:users"}`,
		},
		{
			name: "client without grant",
			req: func() *http.Request {
				return formReq(t, s, form("client_id", "nogrant", "client_secret", "ng-secret"))
			},
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "missing grant_type",
			req:        func() *http.Request { return formReq(t, s, form("grant_type", "")) },
			wantStatus: http.StatusBadRequest,
			wantBody:   `{"error":"invalid_request","error_description":"Missing required parameter: grant_type"}`,
		},
		{
			name:       "password grant",
			req:        func() *http.Request { return formReq(t, s, form("grant_type", "password")) },
			wantStatus: http.StatusForbidden,
		},
		{
			name:       "GET",
			req:        func() *http.Request { return newRequest(t, http.MethodGet, s.URL()+"/oauth/token", nil) },
			wantStatus: http.StatusMethodNotAllowed,
		},
	}
	issued := 0
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := do(t, c, tc.req())
			if r.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %s", r.status, tc.wantStatus, r.body)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if tc.wantBody != "" {
				assertJSON(t, r.body, tc.wantBody)
			}
			if tc.wantStatus != http.StatusOK {
				return
			}
			issued++
			m := r.object(t)
			tok, _ := m["access_token"].(string)
			if !strings.HasPrefix(tok, auth0sim.PrefixM2MToken) || !auth0sim.TokenPattern.MatchString(tok) {
				t.Errorf("access_token %q lacks the M2M prefix", tok)
			}
			if m["token_type"] != "Bearer" || m["expires_in"] != float64(86400) || m["scope"] != tc.wantScope {
				t.Errorf("body = %s, want token_type Bearer, expires_in 86400, scope %q", r.body, tc.wantScope)
			}
			if len(m) != 4 {
				t.Errorf("unexpected fields in %s", r.body)
			}
			if cc := r.header.Get("Cache-Control"); cc != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", cc)
			}
		})
	}
	if got := s.Stats().M2MTokensIssued; got != issued {
		t.Errorf("Stats.M2MTokensIssued = %d, want %d", got, issued)
	}
}

func formReq(t *testing.T, s *auth0sim.Server, v url.Values) *http.Request {
	t.Helper()
	r := newRequest(t, http.MethodPost, s.URL()+"/oauth/token", strings.NewReader(v.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

func TestM2MTokenLifetimeAndExpiry(t *testing.T) {
	s, clk := newSim(t, auth0sim.Options{M2MTokenLifetime: time.Hour})
	c := clientFor(t, s)
	tok := m2mToken(t, s, c, "read:users")
	s.AddUser("auth0|1", auth0sim.IdentitySpec{Connection: "Username-Password-Authentication", Provider: "auth0", UserID: "1"})
	u := s.URL() + "/api/v2/users/auth0%7C1"

	if r := get(t, c, u, tok); r.status != http.StatusOK {
		t.Fatalf("fresh token: %d %s", r.status, r.body)
	}
	clk.Step(time.Hour - time.Second)
	if r := get(t, c, u, tok); r.status != http.StatusOK {
		t.Fatalf("token just before expiry: %d %s", r.status, r.body)
	}
	clk.Step(time.Second)
	r := get(t, c, u, tok)
	if r.status != http.StatusUnauthorized {
		t.Fatalf("expired token: status %d, want 401", r.status)
	}
	if m := r.object(t); m["statusCode"] != float64(401) || m["errorCode"] != "invalid_token" {
		t.Errorf("expired token body = %s", r.body)
	}
}

func TestManagementAPIAuthentication(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	u := s.URL() + "/api/v2/users/auth0%7C1"
	tests := []struct {
		name, header, want string
	}{
		{"missing header", "", `{"statusCode":401,"error":"Unauthorized","message":"Missing authentication","errorCode":"missing_authorization"}`},
		{"unknown token", "Bearer sim_m2m_forged", `{"statusCode":401,"error":"Unauthorized","message":"Invalid token.","errorCode":"invalid_token"}`},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), `{"statusCode":401,"error":"Unauthorized","message":"Bad HTTP authentication header format","errorCode":"invalid_authorization_header"}`},
		{"IdP token is not an M2M token", "Bearer " + "sim_at_notanm2mtoken", `{"statusCode":401,"error":"Unauthorized","message":"Invalid token.","errorCode":"invalid_token"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req := newRequest(t, http.MethodGet, u, nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			r := do(t, c, req)
			if r.status != http.StatusUnauthorized {
				t.Fatalf("status = %d, want 401", r.status)
			}
			assertJSON(t, r.body, tc.want)
			if r.header.Get("x-ratelimit-limit") == "" {
				t.Error("401 response lacks rate-limit headers")
			}
		})
	}
}
