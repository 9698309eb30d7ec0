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
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

func TestLogsNeverContainTokens(t *testing.T) {
	var logs logBuffer
	s, _ := newSim(t, auth0sim.Options{Logf: logs.logf})
	c := clientFor(t, s)
	seedUsers(s)
	tok := m2mToken(t, s, c, "read:users", "read:user_idp_tokens")
	if r := get(t, c, s.URL()+"/api/v2/users/google-oauth2%7C123", tok); r.status != http.StatusOK {
		t.Fatalf("read user: %d", r.status)
	}
	rt := s.CurrentRefreshToken("google-oauth2|123", "github")
	for range 2 { // second use is an invalid_grant
		_ = postForm(t, c, s.TokenURL("github"), url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"gh-id"}, "client_secret": {"gh-secret"}})
	}
	// A token sent where it does not belong must not be reflected either.
	r := postForm(t, c, s.URL()+"/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"m2m-read_users-read_user_idp_tokens"},
		"client_secret": {"secret-m2m-read_users-read_user_idp_tokens"}, "audience": {rt}})
	if r.status != http.StatusForbidden || auth0sim.TokenPattern.Match(r.body) {
		t.Errorf("audience error reflects a token: %d %s", r.status, r.body)
	}
	s.Close()

	out := logs.String()
	if !strings.Contains(out, "/oauth/token") || !strings.Contains(out, "/idp/github/token -> 400") {
		t.Fatalf("expected request log lines, got:\n%s", out)
	}
	if m := auth0sim.TokenPattern.FindString(out); m != "" {
		t.Errorf("log contains a token value:\n%s", out)
	}
}

func TestTokenPatternMatchesEveryKind(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "jwt", ClientID: "cid", ClientSecret: "csecret", JWT: true})
	s.AddUser("oauth2|u", auth0sim.IdentitySpec{Connection: "c", Provider: "oauth2", UserID: "u", IdP: "jwt", OfflineAccess: true, AccessTokenSecret: true})
	at := s.CurrentAccessToken("oauth2|u", "c")
	if !strings.HasPrefix(at, auth0sim.JWTHeaderSegment+".") {
		t.Errorf("JWT access token does not start with JWTHeaderSegment")
	}
	for _, tok := range []string{m2mToken(t, s, c, "read:users"), at, s.CurrentRefreshToken("oauth2|u", "c")} {
		if got := auth0sim.TokenPattern.FindString("prefix " + tok + " suffix"); got != tok {
			t.Errorf("TokenPattern found %q, want the whole token", got)
		}
	}
	for _, benign := range []string{"sim_at_", "eyJhbGciOiJIUzI1NiJ9.e30.sig", "auth0sim: GET /api/v2/users/x -> 200"} {
		if auth0sim.TokenPattern.MatchString(benign) {
			t.Errorf("TokenPattern matches %q", benign)
		}
	}
}

func TestConfigurationPanics(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	s.AddIdP(auth0sim.IdPOptions{Name: "idp", ClientID: "cid"})
	s.AddConnection(auth0sim.ConnectionSpec{ID: "con_1", Name: "taken", Strategy: "oauth2"})
	tests := []struct {
		name string
		fn   func()
	}{
		{"IdP without name", func() { s.AddIdP(auth0sim.IdPOptions{ClientID: "x"}) }},
		{"IdP bad rotation", func() { s.AddIdP(auth0sim.IdPOptions{Name: "x", ClientID: "x", Rotation: "sometimes"}) }},
		{"user ID is not the primary identity", func() {
			s.AddUser("google-oauth2|1", auth0sim.IdentitySpec{Connection: "github", Provider: "github", UserID: "1"})
		}},
		{"unknown IdP", func() {
			s.AddUser("oauth2|1", auth0sim.IdentitySpec{Connection: "c", Provider: "oauth2", UserID: "1", IdP: "nope"})
		}},
		{"offline access without IdP", func() {
			s.AddUser("oauth2|1", auth0sim.IdentitySpec{Connection: "c", Provider: "oauth2", UserID: "1", OfflineAccess: true})
		}},
		{"non-numeric numeric ID", func() {
			s.AddUser("github|abc", auth0sim.IdentitySpec{Connection: "github", Provider: "github", UserID: "abc", NumericUserID: true})
		}},
		{"login of unknown user", func() { s.Login("nobody") }},
		{"connection admin tokens without IdP", func() {
			s.AddConnection(auth0sim.ConnectionSpec{Name: "x", Strategy: "google-apps", AdminTokens: true})
		}},
		{"duplicate connection name", func() { s.AddConnection(auth0sim.ConnectionSpec{ID: "con_2", Name: "taken", Strategy: "oauth2"}) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			tc.fn()
		})
	}
}

func TestGeneratedConnectionID(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddConnection(auth0sim.ConnectionSpec{Name: "db", Strategy: "auth0"})
	tok := m2mToken(t, s, c, "read:connections")
	r := get(t, c, s.URL()+"/api/v2/connections?name=db", tok)
	var list []map[string]any
	if r.status != http.StatusOK {
		t.Fatalf("status %d", r.status)
	}
	assertDecode(t, r.body, &list)
	if len(list) != 1 {
		t.Fatalf("list = %s", r.body)
	}
	id, _ := list[0]["id"].(string)
	if !strings.HasPrefix(id, "con_") {
		t.Fatalf("generated ID %q", id)
	}
	if r := get(t, c, s.URL()+"/api/v2/connections/"+id, tok); r.status != http.StatusOK {
		t.Errorf("GET by generated ID: %d", r.status)
	}
}

// TestConcurrentUse exercises the server from many goroutines; run with -race.
func TestConcurrentUse(t *testing.T) {
	s, clk := newSim(t, auth0sim.Options{RateLimitPerSecond: 1000})
	c := clientFor(t, s)
	seedUsers(s)
	tok := m2mToken(t, s, c, "read:users", "read:user_idp_tokens")

	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				req, err := http.NewRequest(http.MethodGet, s.URL()+"/api/v2/users/google-oauth2%7C123", nil)
				if err != nil {
					t.Error(err)
					return
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := c.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("read status %d", resp.StatusCode)
				}
			}
		})
		wg.Go(func() {
			for range 10 {
				s.Login("google-oauth2|123")
				_ = s.Stats()
				_, _ = s.AccessTokenValid(s.CurrentAccessToken("google-oauth2|123", "google-oauth2"))
				clk.Step(time.Millisecond)
			}
		})
		wg.Go(func() {
			for range 10 {
				rt := s.CurrentRefreshToken("google-oauth2|123", "google-oauth2")
				form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"g-id"}, "client_secret": {"g-secret"}}
				resp, err := c.PostForm(s.TokenURL("google"), form)
				if err != nil {
					t.Error(err)
					return
				}
				_ = resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					t.Errorf("refresh status %d", resp.StatusCode)
				}
			}
		})
	}
	wg.Wait()
	if r := get(t, c, s.URL()+"/api/v2/users/google-oauth2%7C123", tok); r.status != http.StatusOK {
		t.Errorf("final read: %d", r.status)
	}
	if got := s.Stats().IdPRefreshes["google"]; got != 80 {
		t.Errorf("IdPRefreshes = %d, want 80", got)
	}
}
