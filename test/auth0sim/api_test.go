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
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// seedUsers adds IdPs and a user with Google, GitHub and Twitter identities.
func seedUsers(s *auth0sim.Server) {
	s.AddIdP(auth0sim.IdPOptions{Name: "google", ClientID: "g-id", ClientSecret: "g-secret", Rotation: auth0sim.RotationNone, AccessTokenLifetime: time.Hour})
	s.AddIdP(auth0sim.IdPOptions{Name: "github", ClientID: "gh-id", ClientSecret: "gh-secret", Rotation: auth0sim.RotationStrict, AccessTokenLifetime: 8 * time.Hour, OmitExpiresIn: true})
	s.AddIdP(auth0sim.IdPOptions{Name: "twitter", ClientID: "tw-id", ClientSecret: "tw-secret"})
	s.AddUser("google-oauth2|123",
		auth0sim.IdentitySpec{Connection: "google-oauth2", Provider: "google-oauth2", UserID: "123", IsSocial: true, IdP: "google", OfflineAccess: true},
		auth0sim.IdentitySpec{Connection: "github", Provider: "github", UserID: "4567", IsSocial: true, IdP: "github", OfflineAccess: true, NumericUserID: true},
		auth0sim.IdentitySpec{Connection: "twitter", Provider: "twitter", UserID: "890", IsSocial: true, IdP: "twitter", AccessTokenSecret: true},
	)
}

func TestGetUserScopeFiltering(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	seedUsers(s)
	u := s.URL() + "/api/v2/users/" + url.PathEscape("google-oauth2|123")

	t.Run("read:users only omits tokens", func(t *testing.T) {
		r := get(t, c, u, m2mToken(t, s, c, "read:users"))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		if auth0sim.TokenPattern.Match(r.body) {
			t.Errorf("body contains tokens without read:user_idp_tokens: %s", r.body)
		}
		for _, id := range r.object(t)["identities"].([]any) {
			for _, k := range []string{"access_token", "refresh_token", "access_token_secret", "expires_in"} {
				if _, ok := id.(map[string]any)[k]; ok {
					t.Errorf("identity has %s without read:user_idp_tokens", k)
				}
			}
		}
	})

	t.Run("read:user_idp_tokens includes tokens", func(t *testing.T) {
		r := get(t, c, u, m2mToken(t, s, c, "read:users", "read:user_idp_tokens"))
		if r.status != http.StatusOK {
			t.Fatalf("status %d: %s", r.status, r.body)
		}
		gAT, gRT := s.CurrentAccessToken("google-oauth2|123", "google-oauth2"), s.CurrentRefreshToken("google-oauth2|123", "google-oauth2")
		ghAT, ghRT := s.CurrentAccessToken("google-oauth2|123", "github"), s.CurrentRefreshToken("google-oauth2|123", "github")
		twAT := s.CurrentAccessToken("google-oauth2|123", "twitter")
		var body struct {
			UserID     string `json:"user_id"`
			LastLogin  string `json:"last_login"`
			Identities []map[string]json.RawMessage
		}
		if err := json.Unmarshal(r.body, &body); err != nil {
			t.Fatal(err)
		}
		if body.UserID != "google-oauth2|123" || body.LastLogin != "2026-03-01T10:00:00.250Z" || len(body.Identities) != 3 {
			t.Fatalf("unexpected user: %s", r.body)
		}
		want := []string{
			`{"connection":"google-oauth2","provider":"google-oauth2","user_id":"123","isSocial":true,"access_token":"` + gAT + `","refresh_token":"` + gRT + `","expires_in":3600}`,
			`{"connection":"github","provider":"github","user_id":4567,"isSocial":true,"access_token":"` + ghAT + `","refresh_token":"` + ghRT + `"}`,
		}
		for i, w := range want {
			raw, err := json.Marshal(body.Identities[i])
			if err != nil {
				t.Fatal(err)
			}
			assertJSON(t, raw, w)
		}
		tw := body.Identities[2]
		var twToken, twSecret string
		if err := json.Unmarshal(tw["access_token"], &twToken); err != nil || twToken != twAT {
			t.Errorf("twitter access_token = %s, want Auth0's copy", tw["access_token"])
		}
		if err := json.Unmarshal(tw["access_token_secret"], &twSecret); err != nil || !strings.HasPrefix(twSecret, auth0sim.PrefixAccessTokenSecret) {
			t.Errorf("twitter access_token_secret = %s", tw["access_token_secret"])
		}
		if _, ok := tw["refresh_token"]; ok {
			t.Error("identity without OfflineAccess has a refresh_token")
		}
		for _, tok := range []string{gAT, gRT, ghAT, ghRT, twAT, twSecret} {
			if !auth0sim.TokenPattern.MatchString(tok) {
				t.Errorf("TokenPattern does not match %q", tok)
			}
		}
	})

	t.Run("wrong scope is 403", func(t *testing.T) {
		r := get(t, c, u, m2mToken(t, s, c, "read:connections"))
		if r.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", r.status)
		}
		assertJSON(t, r.body, `{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:users","errorCode":"insufficient_scope"}`)
	})

	if got := s.Stats().UserReads["google-oauth2|123"]; got != 2 {
		t.Errorf("UserReads = %d, want 2 (403 is not a read)", got)
	}
}

func TestGetUserFields(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	seedUsers(s)
	tok := m2mToken(t, s, c, "read:users", "read:user_idp_tokens")
	base := s.URL() + "/api/v2/users/google-oauth2%7C123"
	tests := []struct {
		query string
		want  []string
	}{
		{"?fields=user_id,identities&include_fields=true", []string{"identities", "user_id"}},
		{"?fields=user_id,identities", []string{"identities", "user_id"}},
		{"?fields=identities,last_login,logins_count&include_fields=false", []string{"created_at", "updated_at", "user_id"}},
		{"", []string{"created_at", "identities", "last_login", "logins_count", "updated_at", "user_id"}},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			r := get(t, c, base+tc.query, tok)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			var keys []string
			for k := range r.object(t) {
				keys = append(keys, k)
			}
			if got, want := strings.Join(slices.Sorted(slices.Values(keys)), ","), strings.Join(tc.want, ","); got != want {
				t.Errorf("fields = %s, want %s", got, want)
			}
		})
	}
}

func TestNotFoundBodies(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	tok := m2mToken(t, s, c, "read:users", "read:connections")
	tests := []struct {
		name, path string
		status     int
		want       string
	}{
		{"unknown user", "/api/v2/users/google-oauth2%7C999", 404, `{"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"}`},
		{"unknown connection", "/api/v2/connections/con_nope", 404, `{"statusCode":404,"error":"Not Found","message":"The connection does not exist","errorCode":"inexistent_connection"}`},
		{"list by unknown name", "/api/v2/connections?name=nope", 200, `[]`},
		{"unknown route", "/api/v2/clients", 404, `{"statusCode":404,"error":"Not Found","message":"Not Found"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, c, s.URL()+tc.path, tok)
			if r.status != tc.status {
				t.Fatalf("status = %d, want %d", r.status, tc.status)
			}
			assertJSON(t, r.body, tc.want)
		})
	}
}

func TestConnections(t *testing.T) {
	s, clk := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "custom", ClientID: "cu-id", ClientSecret: "cu-secret", AccessTokenLifetime: 10 * time.Minute})
	s.AddIdP(auth0sim.IdPOptions{Name: "workspace", ClientID: "ws-id", ClientSecret: "ws-secret", AccessTokenLifetime: time.Hour, Rotation: auth0sim.RotationRotate})
	s.AddConnection(auth0sim.ConnectionSpec{ID: "con_oauth2", Name: "my-oauth2", Strategy: "oauth2", IdP: "custom"})
	s.AddConnection(auth0sim.ConnectionSpec{ID: "con_gapps", Name: "example-com", Strategy: "google-apps", IdP: "workspace", AdminTokens: true, TenantDomain: "example.com"})
	adminAT, adminRT := s.ConnectionAdminTokens("con_gapps")

	withSecrets := m2mToken(t, s, c, "read:connections", "read:connections_options")
	noSecrets := m2mToken(t, s, c, "read:connections")

	tests := []struct {
		name, path, token, want string
	}{
		{"oauth2 with options scope", "/api/v2/connections/con_oauth2", withSecrets,
			`{"id":"con_oauth2","name":"my-oauth2","strategy":"oauth2","is_domain_connection":false,"realms":["my-oauth2"],
			  "options":{"client_id":"cu-id","client_secret":"cu-secret","tokenURL":"` + s.TokenURL("custom") + `"}}`},
		{"oauth2 without options scope", "/api/v2/connections/con_oauth2", noSecrets,
			`{"id":"con_oauth2","name":"my-oauth2","strategy":"oauth2","is_domain_connection":false,"realms":["my-oauth2"],
			  "options":{"client_id":"cu-id","tokenURL":"` + s.TokenURL("custom") + `"}}`},
		{"admin tokens with options scope", "/api/v2/connections/con_gapps", withSecrets,
			`{"id":"con_gapps","name":"example-com","strategy":"google-apps","is_domain_connection":false,"realms":["example-com"],
			  "options":{"client_id":"ws-id","client_secret":"ws-secret","tenant_domain":"example.com",
			  "admin_access_token":"` + adminAT + `","admin_refresh_token":"` + adminRT + `","admin_access_token_expiresin":"2026-03-01T11:00:00.250Z"}}`},
		{"admin tokens without options scope", "/api/v2/connections/con_gapps", noSecrets,
			`{"id":"con_gapps","name":"example-com","strategy":"google-apps","is_domain_connection":false,"realms":["example-com"],
			  "options":{"client_id":"ws-id","tenant_domain":"example.com"}}`},
		{"list by name", "/api/v2/connections?name=example-com", noSecrets,
			`[{"id":"con_gapps","name":"example-com","strategy":"google-apps","is_domain_connection":false,"realms":["example-com"],
			  "options":{"client_id":"ws-id","tenant_domain":"example.com"}}]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := get(t, c, s.URL()+tc.path, tc.token)
			if r.status != http.StatusOK {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			assertJSON(t, r.body, tc.want)
		})
	}

	t.Run("users scope is not enough", func(t *testing.T) {
		r := get(t, c, s.URL()+"/api/v2/connections/con_oauth2", m2mToken(t, s, c, "read:users"))
		if r.status != http.StatusForbidden {
			t.Fatalf("status %d, want 403", r.status)
		}
		assertJSON(t, r.body, `{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:connections","errorCode":"insufficient_scope"}`)
	})

	t.Run("admin tokens are real IdP tokens", func(t *testing.T) {
		exp, ok := s.AccessTokenValid(adminAT)
		if !ok || !exp.Equal(t0.Add(time.Hour)) {
			t.Errorf("AccessTokenValid(admin) = %v, %v", exp, ok)
		}
		r := postForm(t, c, s.TokenURL("workspace"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {adminRT}, "client_id": {"ws-id"}, "client_secret": {"ws-secret"}})
		if r.status != http.StatusOK {
			t.Fatalf("refresh admin token: %d %s", r.status, r.body)
		}
		clk.Step(time.Hour)
		if _, ok := s.AccessTokenValid(adminAT); ok {
			t.Error("admin access token valid after its lifetime")
		}
	})

	if got := s.Stats().ConnectionReads; got != len(tests) {
		t.Errorf("ConnectionReads = %d, want %d", got, len(tests))
	}
}

func TestRateLimitIsATokenBucket(t *testing.T) {
	// at is x-ratelimit-reset for a reset due d after t0 (which is not a whole second): rounded up.
	at := func(d time.Duration) string { return strconv.FormatInt(t0.Add(d).Add(time.Second-1).Unix(), 10) }
	type step struct {
		wait       time.Duration // clock step before the request
		status     int
		remaining  string
		reset      string
		retryAfter string // on a 429
	}
	tests := map[string]struct {
		opts  auth0sim.Options
		limit string
		steps []step
	}{
		"2/s, burst 2, reset when full": {
			opts:  auth0sim.Options{RateLimitPerSecond: 2},
			limit: "2",
			steps: []step{
				{status: 200, remaining: "1", reset: at(500 * time.Millisecond)},
				{status: 200, remaining: "0", reset: at(time.Second)},
				{status: 429, remaining: "0", reset: at(time.Second), retryAfter: "1"},
				{status: 429, remaining: "0", reset: at(time.Second), retryAfter: "1"},
				// 0.75 s later the bucket holds 1.5 tokens: one request, half a token left,
				// full again 0.75 s later.
				{wait: 750 * time.Millisecond, status: 200, remaining: "0", reset: at(1500 * time.Millisecond)},
				{status: 429, remaining: "0", reset: at(1500 * time.Millisecond), retryAfter: "1"},
			},
		},
		"2/s, burst 2, reset at the next token": {
			opts:  auth0sim.Options{RateLimitPerSecond: 2, RateLimitReset: auth0sim.ResetNextToken},
			limit: "2",
			steps: []step{
				{status: 200, remaining: "1", reset: at(500 * time.Millisecond)},
				{status: 200, remaining: "0", reset: at(500 * time.Millisecond)},
				{status: 429, remaining: "0", reset: at(500 * time.Millisecond), retryAfter: "1"},
				// Half a token left; the next one arrives 0.25 s later.
				{wait: 750 * time.Millisecond, status: 200, remaining: "0", reset: at(time.Second)},
			},
		},
		"1/s, burst 5, reset when full": {
			opts:  auth0sim.Options{RateLimitPerSecond: 1, RateLimitBurst: 5},
			limit: "5",
			steps: []step{
				{status: 200, remaining: "4", reset: at(time.Second)},
				{status: 200, remaining: "3", reset: at(2 * time.Second)},
				{status: 200, remaining: "2", reset: at(3 * time.Second)},
				{status: 200, remaining: "1", reset: at(4 * time.Second)},
				{status: 200, remaining: "0", reset: at(5 * time.Second)},
				{status: 429, remaining: "0", reset: at(5 * time.Second), retryAfter: "1"},
				{wait: 2 * time.Second, status: 200, remaining: "1", reset: at(6 * time.Second)},
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s, clk := newSim(t, tc.opts)
			c := clientFor(t, s)
			seedUsers(s)
			tok := m2mToken(t, s, c, "read:users")
			u := s.URL() + "/api/v2/users/google-oauth2%7C123"
			want429 := 0
			for i, st := range tc.steps {
				clk.Step(st.wait)
				r := get(t, c, u, tok)
				if r.status != st.status {
					t.Fatalf("request %d: status %d, want %d", i+1, r.status, st.status)
				}
				if got := r.header.Get("X-RateLimit-Limit"); got != tc.limit {
					t.Errorf("request %d: x-ratelimit-limit = %q, want %s", i+1, got, tc.limit)
				}
				if got := r.header.Get("X-RateLimit-Remaining"); got != st.remaining {
					t.Errorf("request %d: x-ratelimit-remaining = %q, want %s", i+1, got, st.remaining)
				}
				if got := r.header.Get("X-RateLimit-Reset"); got != st.reset {
					t.Errorf("request %d: x-ratelimit-reset = %q, want %s", i+1, got, st.reset)
				}
				if st.status == 429 {
					want429++
					assertJSON(t, r.body, `{"statusCode":429,"error":"Too Many Requests","message":"Global limit has been reached","errorCode":"too_many_requests"}`)
					if got := r.header.Get("Retry-After"); got != st.retryAfter {
						t.Errorf("request %d: Retry-After = %q, want %s", i+1, got, st.retryAfter)
					}
				}
			}
			// The token endpoint is not part of the Management API limit.
			_ = m2mToken(t, s, c, "read:users", "read:connections")
			if st := s.Stats(); st.RateLimited != want429 || st.APIRequests != len(tc.steps) {
				t.Errorf("Stats RateLimited=%d APIRequests=%d, want %d and %d", st.RateLimited, st.APIRequests, want429, len(tc.steps))
			}
		})
	}
}

func TestRateLimitUnlimitedStillSendsHeaders(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	tok := m2mToken(t, s, c, "read:users")
	for i := range 20 {
		r := get(t, c, s.URL()+"/api/v2/users/nobody", tok)
		if r.status != http.StatusNotFound {
			t.Fatalf("request %d: status %d", i, r.status)
		}
		if r.header.Get("X-RateLimit-Limit") != strconv.Itoa(auth0sim.UnlimitedRateLimit) || r.header.Get("X-RateLimit-Reset") == "" {
			t.Fatalf("request %d: headers %v", i, r.header)
		}
	}
}

func TestPathEscapedUserIDs(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddUser("samlp|corp|a/b c", auth0sim.IdentitySpec{Connection: "corp", Provider: "samlp", UserID: "corp|a/b c"})
	tok := m2mToken(t, s, c, "read:users")
	r := get(t, c, s.URL()+"/api/v2/users/"+url.PathEscape("samlp|corp|a/b c"), tok)
	if r.status != http.StatusOK || r.object(t)["user_id"] != "samlp|corp|a/b c" {
		t.Errorf("status %d body %s", r.status, r.body)
	}
}
