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
	"testing"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// TestIdPContentType: an IdP configured so labels its JSON answers, successes and errors, with
// another Content-Type; the body stays JSON.
func TestIdPContentType(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "plain", ClientID: "cid", ClientSecret: "csecret", ContentType: "text/plain; charset=utf-8"})
	s.AddUser("oauth2|u", auth0sim.IdentitySpec{Connection: "conn", Provider: "oauth2", UserID: "u", IdP: "plain", OfflineAccess: true})

	ok := postForm(t, c, s.TokenURL("plain"), refreshForm(s.CurrentRefreshToken("oauth2|u", "conn")))
	bad := postForm(t, c, s.TokenURL("plain"), refreshForm("sim_rt_unknown"))
	for name, r := range map[string]response{"success": ok, "error": bad} {
		if ct := r.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", name, ct)
		}
	}
	if ok.status != http.StatusOK || ok.object(t)["access_token"] == nil {
		t.Errorf("success: %s", brief(ok))
	}
	if bad.status != http.StatusBadRequest || bad.object(t)["error"] != "invalid_grant" {
		t.Errorf("error: %s", brief(bad))
	}
}

// TestIdPGitHubErrors: a GitHub-like IdP answers errors with HTTP 200 and GitHub's codes.
func TestIdPGitHubErrors(t *testing.T) {
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "gh", ClientID: "cid", ClientSecret: "csecret", Rotation: auth0sim.RotationStrict, GitHubErrors: true})
	s.AddUser("github|1", auth0sim.IdentitySpec{Connection: "github", Provider: "github", UserID: "1", IdP: "gh", OfflineAccess: true})
	rt := s.CurrentRefreshToken("github|1", "github")
	if r := postForm(t, c, s.TokenURL("gh"), refreshForm(rt)); r.status != http.StatusOK || r.object(t)["access_token"] == nil {
		t.Fatalf("first refresh: %s", brief(r))
	}
	wrongClient := refreshForm(rt)
	wrongClient.Set("client_secret", "nope")

	tests := map[string]struct {
		form     url.Values
		wantCode string
	}{
		"spent refresh token":   {form: refreshForm(rt), wantCode: "bad_refresh_token"},
		"unknown refresh token": {form: refreshForm("sim_rt_unknown"), wantCode: "bad_refresh_token"},
		"wrong client secret":   {form: wrongClient, wantCode: "incorrect_client_credentials"},
		"missing refresh token": {form: refreshForm(""), wantCode: "invalid_request"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := postForm(t, c, s.TokenURL("gh"), tc.form)
			m := r.object(t)
			if r.status != http.StatusOK || m["error"] != tc.wantCode || m["access_token"] != nil {
				t.Fatalf("got %s, want 200 with error %q", brief(r), tc.wantCode)
			}
			if auth0sim.TokenPattern.Match(r.body) || strings.Contains(string(r.body), rt) {
				t.Error("the error echoes a token")
			}
		})
	}
	if got := s.Stats().InvalidGrants; got != 2 {
		t.Errorf("InvalidGrants = %d, want 2", got)
	}
}

// oidcTenant has an IdP and an oidc connection using it with the given options.
func oidcTenant(t *testing.T, spec auth0sim.ConnectionSpec) (*auth0sim.Server, *http.Client, string) {
	t.Helper()
	s, _ := newSim(t, auth0sim.Options{})
	c := clientFor(t, s)
	s.AddIdP(auth0sim.IdPOptions{Name: "corp", ClientID: "cid", ClientSecret: "csecret"})
	spec.Name, spec.IdP = "corp-oidc", "corp"
	if spec.Strategy == "" {
		spec.Strategy = "oidc"
	}
	s.AddConnection(spec)
	s.AddUser("oidc|u", auth0sim.IdentitySpec{Connection: "corp-oidc", Provider: "oidc", UserID: "u", IdP: "corp", OfflineAccess: true})
	return s, c, s.CurrentRefreshToken("oidc|u", "corp-oidc")
}

// TestOIDCConnectionOptionsLeadToItsTokenEndpoint follows each way an oidc or okta connection
// names its token endpoint, from GET /api/v2/connections to a refresh grant that works.
func TestOIDCConnectionOptionsLeadToItsTokenEndpoint(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		by       auth0sim.OIDCEndpoint
		option   string
	}{
		{"oidc", auth0sim.OIDCByTokenEndpoint, "token_endpoint"},
		{"oidc", auth0sim.OIDCByDiscoveryURL, "discovery_url"},
		{"okta", auth0sim.OIDCByIssuer, "issuer"},
	} {
		t.Run(string(tc.by), func(t *testing.T) {
			s, c, rt := oidcTenant(t, auth0sim.ConnectionSpec{Strategy: tc.strategy, OIDC: tc.by})
			r := get(t, c, s.URL()+"/api/v2/connections?name=corp-oidc", m2mToken(t, s, c, auth0sim.ScopeReadConnections))
			var list []struct {
				Options map[string]any `json:"options"`
			}
			assertDecode(t, r.body, &list)
			if len(list) != 1 {
				t.Fatalf("connections: %s", r.body)
			}
			opts := list[0].Options
			for _, o := range []string{"token_endpoint", "discovery_url", "issuer", "token_endpoint_auth_method"} {
				if _, has := opts[o]; has != (o == tc.option) {
					t.Errorf("options.%s present = %v: %v", o, has, opts)
				}
			}
			endpoint, _ := opts[tc.option].(string)
			switch tc.by {
			case auth0sim.OIDCByIssuer:
				endpoint = discover(t, c, endpoint+"/.well-known/openid-configuration", endpoint)
			case auth0sim.OIDCByDiscoveryURL:
				endpoint = discover(t, c, endpoint, s.IssuerURL("corp-oidc"))
			}
			if endpoint != s.ConnectionTokenURL("corp-oidc") || !strings.HasPrefix(endpoint, s.URL()+"/") {
				t.Fatalf("token endpoint %q, want %q", endpoint, s.ConnectionTokenURL("corp-oidc"))
			}
			if r := postForm(t, c, endpoint, refreshForm(rt)); r.status != http.StatusOK || r.object(t)["access_token"] == nil {
				t.Fatalf("refresh at %s: %s", endpoint, brief(r))
			}
		})
	}
}

// discover reads a discovery document and returns its token_endpoint.
func discover(t *testing.T, c *http.Client, u, wantIssuer string) string {
	t.Helper()
	r := get(t, c, u, "")
	var doc struct {
		Issuer        string `json:"issuer"`
		TokenEndpoint string `json:"token_endpoint"`
	}
	assertDecode(t, r.body, &doc)
	if r.status != http.StatusOK || doc.Issuer != wantIssuer || !strings.HasPrefix(r.header.Get("Content-Type"), "application/json") {
		t.Fatalf("discovery %s: %s", u, brief(r))
	}
	return doc.TokenEndpoint
}

// TestOIDCTokenEndpointAuthMethod: the connection's token endpoint accepts only the client
// authentication its options name, like a strict server; without one, both.
func TestOIDCTokenEndpointAuthMethod(t *testing.T) {
	for _, tc := range []struct {
		method            string
		wantPost, wantBas int
	}{
		{auth0sim.ClientSecretBasic, http.StatusUnauthorized, http.StatusOK},
		{auth0sim.ClientSecretPost, http.StatusOK, http.StatusUnauthorized},
		{"", http.StatusOK, http.StatusOK},
	} {
		t.Run("method "+tc.method, func(t *testing.T) {
			s, c, rt := oidcTenant(t, auth0sim.ConnectionSpec{OIDC: auth0sim.OIDCByDiscoveryURL, TokenEndpointAuthMethod: tc.method})
			doc := get(t, c, s.DiscoveryURL("corp-oidc"), "").object(t)
			methods, _ := doc["token_endpoint_auth_methods_supported"].([]any)
			if tc.method != "" && (len(methods) != 1 || methods[0] != tc.method) {
				t.Errorf("token_endpoint_auth_methods_supported = %v", methods)
			}
			post := postForm(t, c, s.ConnectionTokenURL("corp-oidc"), refreshForm(rt))
			form := refreshForm(rt)
			form.Del("client_id")
			form.Del("client_secret")
			req := newRequest(t, http.MethodPost, s.ConnectionTokenURL("corp-oidc"), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("cid", "csecret")
			basic := do(t, c, req)
			if post.status != tc.wantPost || basic.status != tc.wantBas {
				t.Fatalf("post: %s; basic: %s; want %d and %d", brief(post), brief(basic), tc.wantPost, tc.wantBas)
			}
			for _, r := range []response{post, basic} {
				if r.status == http.StatusUnauthorized && r.object(t)["error"] != "invalid_client" {
					t.Errorf("refusal %s, want invalid_client", brief(r))
				}
			}
		})
	}
}

func TestOIDCEndpointsOnlyForOIDCConnections(t *testing.T) {
	s, c, _ := oidcTenant(t, auth0sim.ConnectionSpec{OIDC: auth0sim.OIDCByIssuer})
	s.AddConnection(auth0sim.ConnectionSpec{Name: "plain", Strategy: "oidc", IdP: "corp"})
	for _, u := range []string{s.DiscoveryURL("plain"), s.DiscoveryURL("ghost"), s.IssuerURL("corp-oidc") + "/jwks"} {
		if r := get(t, c, u, ""); r.status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", u, r.status)
		}
	}
	for name, spec := range map[string]auth0sim.ConnectionSpec{
		"OIDC on strategy oauth2":  {Name: "x", Strategy: "oauth2", IdP: "corp", OIDC: auth0sim.OIDCByIssuer},
		"OIDC without IdP":         {Name: "x", Strategy: "oidc", OIDC: auth0sim.OIDCByIssuer},
		"unknown OIDC endpoint":    {Name: "x", Strategy: "oidc", IdP: "corp", OIDC: "jwks"},
		"auth method without OIDC": {Name: "x", Strategy: "oidc", IdP: "corp", TokenEndpointAuthMethod: auth0sim.ClientSecretBasic},
		"unknown auth method":      {Name: "x", Strategy: "okta", IdP: "corp", OIDC: auth0sim.OIDCByIssuer, TokenEndpointAuthMethod: "private_key_jwt"},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("did not panic")
				}
			}()
			s.AddConnection(spec)
		})
	}
}

// TestTokenVaultBadClientAccessDenied: with the option, every client Auth0 cannot authenticate
// gets 401 access_denied "Unauthorized"; an application without the grant keeps its 403, and
// the user's own refusals keep theirs.
func TestTokenVaultBadClientAccessDenied(t *testing.T) {
	s, clk, c := vaultTenant(t, auth0sim.Options{TokenVaultBadClientAccessDenied: true}, auth0sim.RotationNone, true)
	w := newWorker(t, s, clk, "worker", "worker-secret")
	s.AddM2MClient("m2m", "m2m-secret", auth0sim.ScopeReadUsers)
	const user = "google-oauth2|1"
	bySecret := func(id, secret string) url.Values {
		return set(set(set(set(w.form(user, "google-oauth2"), "client_assertion", ""), "client_assertion_type", ""), "client_id", id), "client_secret", secret)
	}
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantError  string
		wantDesc   string
	}{
		{"wrong secret", bySecret("worker", "nope"), 401, "access_denied", "Unauthorized"},
		{"unknown client", bySecret("ghost", "x"), 401, "access_denied", "Unauthorized"},
		{"assertion by another key", set(w.form(user, "google-oauth2"), "client_assertion", w.sign(jwtSpec{key: testKeys()[1], claims: w.claims(w.id)})), 401, "access_denied", "Unauthorized"},
		{"M2M client without the grant", bySecret("m2m", "m2m-secret"), 403, "unauthorized_client", ""},
		{"no linked account", w.form("google-oauth2|404", "google-oauth2"), 401, "access_denied", "The user does not exist."},
		{"good client", w.form(user, "google-oauth2"), 200, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, a := exchange(t, c, s, tc.form)
			if r.status != tc.wantStatus || a.Error != tc.wantError || (tc.wantDesc != "" && a.Description != tc.wantDesc) {
				t.Fatalf("got %s, want %d %q %q", brief(r), tc.wantStatus, tc.wantError, tc.wantDesc)
			}
		})
	}

	s.SetTokenVaultBadClientAccessDenied(false)
	if r, a := exchange(t, c, s, bySecret("worker", "nope")); r.status != 401 || a.Error != "invalid_client" {
		t.Errorf("switched off: %s, want 401 invalid_client", brief(r))
	}
}
