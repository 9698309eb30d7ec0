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
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

func refreshForm(rt string) url.Values {
	return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"cid"}, "client_secret": {"csecret"}}
}

func TestRotationModes(t *testing.T) {
	tests := []struct {
		mode          auth0sim.RotationMode
		wantNewRT     bool
		oldStillValid bool
	}{
		{auth0sim.RotationNone, false, true},
		{auth0sim.RotationRotate, true, true},
		{auth0sim.RotationStrict, true, false},
	}
	for _, tc := range tests {
		t.Run(string(tc.mode), func(t *testing.T) {
			s, _ := newSim(t, auth0sim.Options{})
			c := clientFor(t, s)
			s.AddIdP(auth0sim.IdPOptions{Name: "idp", ClientID: "cid", ClientSecret: "csecret", Rotation: tc.mode, AccessTokenLifetime: 30 * time.Second})
			s.AddUser("oauth2|u1", auth0sim.IdentitySpec{Connection: "conn", Provider: "oauth2", UserID: "u1", IdP: "idp", OfflineAccess: true})

			rt := s.CurrentRefreshToken("oauth2|u1", "conn")
			if rt == "" {
				t.Fatal("no initial refresh token")
			}
			seen := map[string]bool{s.CurrentAccessToken("oauth2|u1", "conn"): true}
			const rounds = 4
			for i := range rounds {
				r := postForm(t, c, s.TokenURL("idp"), refreshForm(rt))
				if r.status != http.StatusOK {
					t.Fatalf("refresh %d: %d %s", i, r.status, r.body)
				}
				m := r.object(t)
				at, _ := m["access_token"].(string)
				if at == "" || seen[at] || !strings.HasPrefix(at, auth0sim.PrefixAccessToken) {
					t.Fatalf("refresh %d: access_token %q not new or wrong prefix", i, at)
				}
				seen[at] = true
				if m["token_type"] != "Bearer" || m["expires_in"] != float64(30) || m["scope"] == nil {
					t.Errorf("refresh %d: body %s", i, r.body)
				}
				newRT, hasRT := m["refresh_token"].(string)
				if hasRT != tc.wantNewRT {
					t.Fatalf("refresh %d: refresh_token present=%v, want %v", i, hasRT, tc.wantNewRT)
				}
				if !hasRT {
					continue
				}
				if newRT == rt || !strings.HasPrefix(newRT, auth0sim.PrefixRefreshToken) {
					t.Fatalf("refresh %d: refresh token not rotated", i)
				}
				if got := s.RefreshTokenSpent(rt); got != !tc.oldStillValid {
					t.Errorf("RefreshTokenSpent(old) = %v", got)
				}
				// Reuse the previous refresh token.
				old := postForm(t, c, s.TokenURL("idp"), refreshForm(rt))
				if tc.oldStillValid {
					if old.status != http.StatusOK {
						t.Errorf("refresh %d: previous refresh token rejected: %d %s", i, old.status, old.body)
					}
				} else {
					if old.status != http.StatusBadRequest || old.object(t)["error"] != "invalid_grant" {
						t.Errorf("refresh %d: double spend got %d %s, want 400 invalid_grant", i, old.status, old.body)
					}
					if strings.Contains(string(old.body), rt) || auth0sim.TokenPattern.Match(old.body) {
						t.Error("invalid_grant response echoes a token")
					}
				}
				rt = newRT
			}
			st := s.Stats()
			wantRefreshes, wantInvalid := rounds, 0
			if tc.wantNewRT && tc.oldStillValid {
				wantRefreshes *= 2
			}
			if !tc.oldStillValid {
				wantInvalid = rounds
			}
			if st.IdPRefreshes["idp"] != wantRefreshes || st.InvalidGrants != wantInvalid {
				t.Errorf("Stats IdPRefreshes=%d InvalidGrants=%d, want %d and %d", st.IdPRefreshes["idp"], st.InvalidGrants, wantRefreshes, wantInvalid)
			}
		})
	}
}

func TestIdPRequestValidation(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "idp", ClientID: "cid", ClientSecret: "c s/+&", Rotation: auth0sim.RotationRotate})
	s.AddIdP(auth0sim.IdPOptions{Name: "other", ClientID: "cid", ClientSecret: "csecret"})
	s.AddUser("oauth2|u1", auth0sim.IdentitySpec{Connection: "conn", Provider: "oauth2", UserID: "u1", IdP: "idp", OfflineAccess: true})
	rt := s.CurrentRefreshToken("oauth2|u1", "conn")

	withForm := func(v url.Values, kv ...string) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = vs
		}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				out.Del(kv[i])
			} else {
				out.Set(kv[i], kv[i+1])
			}
		}
		return out
	}
	good := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {"cid"}, "client_secret": {"c s/+&"}}
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(url.QueryEscape("cid")+":"+url.QueryEscape("c s/+&")))
	tests := []struct {
		name      string
		url       string
		form      url.Values
		header    []string
		status    int
		wantError string
	}{
		{"form client auth", s.TokenURL("idp"), good, nil, 200, ""},
		{"basic client auth (form-encoded per RFC 6749)", s.TokenURL("idp"), withForm(good, "client_id", "", "client_secret", ""), []string{"Authorization", basic}, 200, ""},
		{"wrong secret", s.TokenURL("idp"), withForm(good, "client_secret", "x"), nil, 401, "invalid_client"},
		{"wrong basic secret", s.TokenURL("idp"), withForm(good, "client_id", "", "client_secret", ""), []string{"Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte("cid:x"))}, 401, "invalid_client"},
		{"no client auth", s.TokenURL("idp"), withForm(good, "client_id", "", "client_secret", ""), nil, 401, "invalid_client"},
		{"unsupported grant", s.TokenURL("idp"), withForm(good, "grant_type", "authorization_code"), nil, 400, "unsupported_grant_type"},
		{"missing refresh token", s.TokenURL("idp"), withForm(good, "refresh_token", ""), nil, 400, "invalid_request"},
		{"unknown refresh token", s.TokenURL("idp"), withForm(good, "refresh_token", "sim_rt_unknownunknownunknown"), nil, 400, "invalid_grant"},
		{"token of another IdP", s.TokenURL("other"), withForm(good, "client_secret", "csecret"), nil, 400, "invalid_grant"},
		{"unknown IdP", s.TokenURL("nope"), good, nil, 404, "not_found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := postForm(t, c, tc.url, tc.form, tc.header...)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.wantError == "" {
				return
			}
			m := r.object(t)
			if m["error"] != tc.wantError {
				t.Errorf("error = %v, want %s", m["error"], tc.wantError)
			}
			if auth0sim.TokenPattern.Match(r.body) || strings.Contains(string(r.body), rt) {
				t.Errorf("error body echoes a token: %s", r.body)
			}
		})
	}
	if got := s.Stats().InvalidGrants; got != 2 {
		t.Errorf("InvalidGrants = %d, want 2", got)
	}
}

func TestLoginRotatesAuth0Copy(t *testing.T) {
	s, clk := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "gh", ClientID: "cid", ClientSecret: "csecret", Rotation: auth0sim.RotationStrict, AccessTokenLifetime: 2 * time.Minute})
	s.AddUser("github|42", auth0sim.IdentitySpec{Connection: "github", Provider: "github", UserID: "42", IsSocial: true, IdP: "gh", OfflineAccess: true, NumericUserID: true})
	tok := m2mToken(t, s, c, "read:users", "read:user_idp_tokens")

	read := func() (at, rt, lastLogin string) {
		t.Helper()
		r := get(t, c, s.URL()+"/api/v2/users/github%7C42", tok)
		if r.status != http.StatusOK {
			t.Fatalf("read user: %d %s", r.status, r.body)
		}
		var u struct {
			LastLogin  string `json:"last_login"`
			Identities []struct {
				AccessToken  string `json:"access_token"`
				RefreshToken string `json:"refresh_token"`
			} `json:"identities"`
		}
		if err := json.Unmarshal(r.body, &u); err != nil {
			t.Fatal(err)
		}
		return u.Identities[0].AccessToken, u.Identities[0].RefreshToken, u.LastLogin
	}

	at1, rt1, ll1 := read()
	if at1 != s.CurrentAccessToken("github|42", "github") || rt1 != s.CurrentRefreshToken("github|42", "github") {
		t.Fatal("API and CurrentAccessToken/CurrentRefreshToken disagree")
	}
	clk.Step(5 * time.Minute)
	s.Login("github|42")
	at2, rt2, ll2 := read()
	if at2 == at1 || rt2 == rt1 || ll2 == ll1 {
		t.Fatalf("Login did not rotate Auth0's copy (at same=%v rt same=%v last_login %s -> %s)", at2 == at1, rt2 == rt1, ll1, ll2)
	}
	if ll2 != "2026-03-01T10:05:00.250Z" {
		t.Errorf("last_login = %s", ll2)
	}
	if at2 != s.CurrentAccessToken("github|42", "github") {
		t.Error("CurrentAccessToken is not the post-login copy")
	}
	if _, ok := s.AccessTokenValid(at1); ok {
		t.Error("pre-login access token (2m lifetime) still valid 5m later")
	}
	if _, ok := s.AccessTokenValid(at2); !ok {
		t.Error("post-login access token not valid")
	}
	// The old lineage stays usable once (strict) until spent.
	for i, want := range []int{200, 400} {
		if r := postForm(t, c, s.TokenURL("gh"), refreshForm(rt1)); r.status != want {
			t.Errorf("old lineage use %d: status %d, want %d", i+1, r.status, want)
		}
	}
	if r := postForm(t, c, s.TokenURL("gh"), refreshForm(rt2)); r.status != http.StatusOK {
		t.Errorf("new refresh token: %d %s", r.status, r.body)
	}
}

func TestDeleteUserRevokes(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "ms", ClientID: "cid", ClientSecret: "csecret", Rotation: auth0sim.RotationRotate})
	s.AddUser("windowslive|a", auth0sim.IdentitySpec{Connection: "windowslive", Provider: "windowslive", UserID: "a", IdP: "ms", OfflineAccess: true})
	s.AddUser("windowslive|b", auth0sim.IdentitySpec{Connection: "windowslive", Provider: "windowslive", UserID: "b", IdP: "ms", OfflineAccess: true})
	rtA := s.CurrentRefreshToken("windowslive|a", "windowslive")
	rtB := s.CurrentRefreshToken("windowslive|b", "windowslive")

	r := postForm(t, c, s.TokenURL("ms"), refreshForm(rtA))
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d %s", r.status, r.body)
	}
	rotated, _ := r.object(t)["refresh_token"].(string)

	s.DeleteUser("windowslive|a")
	s.DeleteUser("windowslive|a") // idempotent
	for name, rt := range map[string]string{"original": rtA, "rotated": rotated} {
		r := postForm(t, c, s.TokenURL("ms"), refreshForm(rt))
		if r.status != http.StatusBadRequest || r.object(t)["error"] != "invalid_grant" {
			t.Errorf("%s refresh token after DeleteUser: %d %s", name, r.status, r.body)
		}
	}
	if r := postForm(t, c, s.TokenURL("ms"), refreshForm(rtB)); r.status != http.StatusOK {
		t.Errorf("other user's refresh token revoked too: %d", r.status)
	}
	tok := m2mToken(t, s, c, "read:users")
	if r := get(t, c, s.URL()+"/api/v2/users/windowslive%7Ca", tok); r.status != http.StatusNotFound {
		t.Errorf("deleted user: status %d", r.status)
	}
	if s.CurrentAccessToken("windowslive|a", "windowslive") != "" {
		t.Error("CurrentAccessToken of a deleted user is not empty")
	}
}

func TestAccessTokenValidWithFakeClock(t *testing.T) {
	for _, jwt := range []bool{false, true} {
		t.Run(map[bool]string{false: "opaque", true: "jwt"}[jwt], func(t *testing.T) {
			s, clk := newSim(t, auth0sim.Options{})
			c := clientFor(t, s)
			s.AddIdP(auth0sim.IdPOptions{Name: "idp", ClientID: "cid", ClientSecret: "csecret", AccessTokenLifetime: 30 * time.Second, JWT: jwt})
			s.AddUser("oauth2|u", auth0sim.IdentitySpec{Connection: "c", Provider: "oauth2", UserID: "u", IdP: "idp", OfflineAccess: true})
			at := s.CurrentAccessToken("oauth2|u", "c")

			if !auth0sim.TokenPattern.MatchString(at) {
				t.Errorf("TokenPattern does not match %q", at)
			}
			exp, ok := s.AccessTokenValid(at)
			if !ok || !exp.Equal(t0.Add(30*time.Second)) {
				t.Fatalf("AccessTokenValid = %v, %v; want %v, true", exp, ok, t0.Add(30*time.Second))
			}
			if jwt {
				checkJWT(t, at, t0, 30*time.Second)
			}
			clk.Step(30*time.Second - time.Nanosecond)
			if _, ok := s.AccessTokenValid(at); !ok {
				t.Error("invalid before expiry")
			}
			clk.Step(time.Nanosecond)
			if _, ok := s.AccessTokenValid(at); ok {
				t.Error("still valid at expiry")
			}
			r := postForm(t, c, s.TokenURL("idp"), refreshForm(s.CurrentRefreshToken("oauth2|u", "c")))
			if r.status != http.StatusOK {
				t.Fatalf("refresh: %d %s", r.status, r.body)
			}
			fresh, _ := r.object(t)["access_token"].(string)
			if exp, ok := s.AccessTokenValid(fresh); !ok || !exp.Equal(t0.Add(60*time.Second)) {
				t.Errorf("refreshed token: %v %v", exp, ok)
			}
			if jwt {
				checkJWT(t, fresh, t0.Add(30*time.Second), 30*time.Second)
			}
			if _, ok := s.AccessTokenValid("sim_at_neverissued"); ok {
				t.Error("unknown token reported valid")
			}
		})
	}
}

func checkJWT(t *testing.T, tok string, iat time.Time, lifetime time.Duration) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[2] == "" {
		t.Fatalf("not JWT-shaped: %d segments", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("payload: %v", err)
	}
	var claims struct {
		Exp, Iat int64
		Sub      string
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatalf("claims: %v", err)
	}
	if claims.Iat != iat.Unix() || claims.Exp != iat.Add(lifetime).Unix() || claims.Sub == "" {
		t.Errorf("claims = %+v, want iat %d exp %d", claims, iat.Unix(), iat.Add(lifetime).Unix())
	}
}

func TestOmitExpiresIn(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "idp", ClientID: "cid", ClientSecret: "csecret", OmitExpiresIn: true})
	s.AddUser("oauth2|u", auth0sim.IdentitySpec{Connection: "c", Provider: "oauth2", UserID: "u", IdP: "idp", OfflineAccess: true})
	r := postForm(t, c, s.TokenURL("idp"), refreshForm(s.CurrentRefreshToken("oauth2|u", "c")))
	if r.status != http.StatusOK {
		t.Fatalf("refresh: %d", r.status)
	}
	if _, ok := r.object(t)["expires_in"]; ok {
		t.Errorf("expires_in present: %s", r.body)
	}
}

func TestGitHubFormEncodedResponse(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "github-app", ClientID: "cid", ClientSecret: "csecret", Rotation: auth0sim.RotationStrict, AccessTokenLifetime: 8 * time.Hour})
	s.AddUser("github|1", auth0sim.IdentitySpec{Connection: "github", Provider: "github", UserID: "1", IdP: "github-app", OfflineAccess: true})
	rt := s.CurrentRefreshToken("github|1", "github")

	r := postForm(t, c, s.TokenURL("github-app"), refreshForm(rt))
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		t.Fatalf("no Accept header: %d %q", r.status, r.header.Get("Content-Type"))
	}
	v, err := url.ParseQuery(string(r.body))
	if err != nil || v.Get("access_token") == "" || v.Get("refresh_token") == "" || v.Get("expires_in") != "28800" {
		t.Fatalf("form body does not parse as expected (err %v)", err)
	}
	r = postForm(t, c, s.TokenURL("github-app"), refreshForm(v.Get("refresh_token")), "Accept", "application/json")
	if r.status != http.StatusOK || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("Accept JSON: %d %q", r.status, r.header.Get("Content-Type"))
	}
	r = postForm(t, c, s.TokenURL("github-app"), refreshForm(rt))
	if e, err := url.ParseQuery(string(r.body)); r.status != http.StatusBadRequest || err != nil || e.Get("error") != "invalid_grant" {
		t.Errorf("form error: %d %s", r.status, r.body)
	}
}

func TestStrictRefreshIsAtomic(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "idp", ClientID: "cid", ClientSecret: "csecret", Rotation: auth0sim.RotationStrict})
	s.AddUser("oauth2|u", auth0sim.IdentitySpec{Connection: "c", Provider: "oauth2", UserID: "u", IdP: "idp", OfflineAccess: true})
	rt := s.CurrentRefreshToken("oauth2|u", "c")

	const n = 16
	statuses := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, err := http.NewRequest(http.MethodPost, s.TokenURL("idp"), strings.NewReader(refreshForm(rt).Encode()))
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := c.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for st := range statuses {
		if st == http.StatusOK {
			ok++
		} else if st != http.StatusBadRequest {
			t.Errorf("unexpected status %d", st)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent uses of one strict refresh token succeeded, want exactly 1", ok)
	}
}
