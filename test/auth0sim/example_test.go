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
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/idptoken/idptoken-operator/test/auth0sim"
)

// A tenant with one Google-like IdP and one user; an M2M client reads the
// user's Google tokens and refreshes them at the IdP.
func Example() {
	s, err := auth0sim.New(auth0sim.Options{RateLimitPerSecond: 10})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	s.AddM2MClient("operator", "operator-secret", "read:users", "read:user_idp_tokens")
	s.AddIdP(auth0sim.IdPOptions{Name: "google", ClientID: "g-client", ClientSecret: "g-secret", AccessTokenLifetime: 2 * time.Minute})
	s.AddUser("google-oauth2|123", auth0sim.IdentitySpec{
		Connection: "google-oauth2", Provider: "google-oauth2", UserID: "123",
		IsSocial: true, IdP: "google", OfflineAccess: true,
	})

	c := s.Client() // or build one from s.CAPEM()
	defer c.CloseIdleConnections()

	var m2m struct {
		AccessToken string `json:"access_token"`
	}
	postJSON(c, s.URL()+"/oauth/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"operator"},
		"client_secret": {"operator-secret"}, "audience": {"https://" + s.Domain() + "/api/v2/"},
	}, &m2m)

	req, err := http.NewRequest(http.MethodGet, s.URL()+"/api/v2/users/"+url.PathEscape("google-oauth2|123"), nil)
	if err != nil {
		panic(err)
	}
	req.Header.Set("Authorization", "Bearer "+m2m.AccessToken)
	resp, err := c.Do(req)
	if err != nil {
		panic(err)
	}
	var user struct {
		Identities []struct {
			RefreshToken string `json:"refresh_token"`
			ExpiresIn    int    `json:"expires_in"`
		} `json:"identities"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&user); err != nil {
		panic(err)
	}
	_ = resp.Body.Close()
	fmt.Println("limit:", resp.Header.Get("X-RateLimit-Limit"), "expires_in:", user.Identities[0].ExpiresIn)

	var refreshed struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	postJSON(c, s.TokenURL("google"), url.Values{
		"grant_type": {"refresh_token"}, "refresh_token": {user.Identities[0].RefreshToken},
		"client_id": {"g-client"}, "client_secret": {"g-secret"},
	}, &refreshed)
	_, valid := s.AccessTokenValid(refreshed.AccessToken)
	fmt.Println("refreshed:", refreshed.ExpiresIn, valid, s.Stats().IdPRefreshes["google"])
	// Output:
	// limit: 10 expires_in: 120
	// refreshed: 120 true 1
}

func postJSON(c *http.Client, u string, form url.Values, out any) {
	resp, err := c.PostForm(u, form)
	if err != nil {
		panic(err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		panic(resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		panic(err)
	}
}
